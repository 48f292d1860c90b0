import GraphDriver
import StrataSystem
import SystemPackage

/// Idmapped mounts: the kernel shows a tree's owners shifted, with no file changed and no copy.
///
/// Through an idmapped mount made with a mapping `container:host:size`, a file whose owner on
/// disk is `container + n` shows as owned by `host + n` (and is created so when written through
/// the mount). A layer kept with unshifted (container) owners is thus seen with a user
/// namespace's host owners. An owner outside the mapping shows as the overflow ID.
public enum IdmappedMount {
    /// Whether the filesystem holding the directory `path` can be idmapped by this kernel:
    /// clones the mount there (detached, never attached) and idmaps the clone.
    public static func supportsIdmappedMounts(at path: FilePath) -> Bool {
        do throws(Errno) {
            let namespace = try UserNamespace(uidMap: [identityRange], gidMap: [identityRange])
            let clone = try FileDescriptor.cloneMount(path)
            defer { clone.closeQuietly() }
            try clone.setIDMapping(userNamespace: namespace.descriptor)
            return true
        } catch {
            return false
        }
    }

    /// Mounts `source` at `target` (an existing directory) idmapped through `mappings`.
    ///
    /// Clones the mount at `source` (`open_tree`), idmaps the clone (`mount_setattr` with
    /// `MOUNT_ATTR_IDMAP`) and attaches it (`move_mount`). An empty mapping stands for the
    /// identity. Needs root.
    public static func makeIdmappedMount(source: FilePath, target: FilePath, mappings: IDMappings) throws(StorageError) {
        let mount = try detachedIdmappedMount(source: source, mappings: mappings)
        defer { mount.closeQuietly() }
        try attempt("attach idmapped mount", target) { () throws(Errno) in
            try mount.moveMount(to: target)
        }
    }

    /// An idmapped clone of the mount at `source`, not attached anywhere: the caller owns the
    /// descriptor, and can attach it with `moveMount(to:)` or hand it on (the mount goes away
    /// when the last descriptor of it is closed, unless attached). Once attached, close the
    /// descriptor: while it is open the mount is busy and cannot be unmounted.
    public static func detachedIdmappedMount(source: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor {
        let namespace = try userNamespace(for: mappings)
        let clone: FileDescriptor = try attempt("clone mount for idmapping", source) { () throws(Errno) in
            try FileDescriptor.cloneMount(source)
        }
        do throws(Errno) {
            try clone.setIDMapping(userNamespace: namespace.descriptor)
        } catch {
            clone.closeQuietly()
            if error == .invalidArgument || error == .notSupported || error == .notPermitted {
                throw StorageError(.unsupported, "idmap mount", path: source.string,
                                   reason: "the kernel refused to idmap this mount (\(error)); its filesystem may "
                                       + "not support idmapped mounts, or it is already idmapped", errno: error)
            }
            throw StorageError("idmap mount", path: source.string, errno: error)
        }
        return clone
    }

    /// A user namespace whose maps are `mappings` (the identity when a mapping is empty).
    public static func userNamespace(for mappings: IDMappings) throws(StorageError) -> UserNamespace {
        func ranges(_ map: [IDMap]) -> [UserNamespace.Range] {
            map.isEmpty ? [identityRange]
                : map.map { UserNamespace.Range(inside: $0.containerID, outside: $0.hostID, count: $0.size) }
        }
        do throws(Errno) {
            return try UserNamespace(uidMap: ranges(mappings.uidMap), gidMap: ranges(mappings.gidMap))
        } catch {
            let text = "uid \(mappings.uidMap.map(\.description).joined(separator: ",")) "
                + "gid \(mappings.gidMap.map(\.description).joined(separator: ","))"
            throw StorageError(error == .invalidArgument ? .invalidArgument : .permissionDenied,
                               "make user namespace", path: nil,
                               reason: "the kernel refused the maps \(text): \(error)", errno: error)
        }
    }

    /// Every ID to itself (all but the invalid ID 4294967295).
    static let identityRange = UserNamespace.Range(inside: 0, outside: 0, count: UInt32.max)
}
