import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver {
    /// The name of the access ACL that lets a container's root traverse its layer's directory.
    static let accessACLName = "system.posix_acl_access"

    /// Makes the home searchable by every user but listable by none (0711), so that a user
    /// namespace's root can reach the `merged` of its own layer; the layers' directories stay
    /// closed (0700), each opened to one mapped root by ``grantTraversal(of:to:)``.
    static func makeHomeTraversable(_ home: FilePath) throws(StorageError) {
        try attempt("make driver home traversable", home) { () throws(Errno) in
            let st = try FileDescriptor.currentWorkingDirectory.status(at: home)
            if st.permissions.rawValue & 0o011 != 0o011 {
                try FileDescriptor.currentWorkingDirectory.changeMode(
                    at: home, permissions: FilePermissions(rawValue: (st.permissions.rawValue & 0o7700) | 0o011))
            }
        }
    }

    /// The ACL of a layer directory that its mapped root (host `uid`) may traverse and nobody
    /// else: owner `rwx`, `user:<uid>:--x`, mask `--x`, group and others nothing.
    static func traversalACL(for uid: UInt32) -> PosixACL {
        PosixACL(entries: [
            .init(tag: .userObject, permissions: 7, id: PosixACL.undefinedID),
            .init(tag: .user, permissions: 1, id: uid),
            .init(tag: .groupObject, permissions: 0, id: PosixACL.undefinedID),
            .init(tag: .mask, permissions: 1, id: PosixACL.undefinedID),
            .init(tag: .other, permissions: 0, id: PosixACL.undefinedID),
        ])
    }

    /// Lets the host ID of container root under `mappings` traverse (search, not list or read)
    /// the layer's directory, with an access ACL entry `user:<root>:--x`; for the identity (or
    /// a mapping without root) the ACL goes and the directory is 0700 again.
    func grantTraversal(of layer: LayerLocation, to mappings: IDMappings) throws(StorageError) {
        try grantTraversal(of: FilePath(layer.id.rawValue), in: layer.store, to: mappings)
    }

    /// `grantTraversal(of:to:)` for a layer directory named relative to its store's root (one
    /// being built in `staging/`).
    func grantTraversal(of directory: FilePath, in store: StoreLayout, to mappings: IDMappings) throws(StorageError) {
        let root = mappings.rootUID.flatMap { $0 == 0 ? nil : $0 }
        try attempt("grant the container's root traversal of the layer", store.root.appending(directory.components)) {
            () throws(Errno) in
            let fd = try store.directory().openDirectory(at: directory, followLastSymlink: true)
            defer { fd.closeQuietly() }
            if let root {
                let wanted = Self.traversalACL(for: root).encoded()
                if (try? fd.extendedAttribute(Self.accessACLName)) != wanted {
                    try fd.setExtendedAttribute(Self.accessACLName, wanted)
                }
            } else {
                try fd.removeExtendedAttribute(Self.accessACLName)
                try fd.changeMode(permissions: FilePermissions(rawValue: 0o700))
            }
        }
    }
}
