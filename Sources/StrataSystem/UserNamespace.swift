import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A user namespace held by a descriptor, made with given ID maps and no process left in it:
/// what `mount_setattr(2)` needs to idmap a mount.
public struct UserNamespace: ~Copyable {
    /// One line of a `uid_map` or `gid_map` file: `count` IDs from `inside` in the namespace are
    /// `outside…` in the namespace that made it.
    public struct Range: Sendable, Hashable {
        public var inside: UInt32
        public var outside: UInt32
        public var count: UInt32

        public init(inside: UInt32, outside: UInt32, count: UInt32) {
            self.inside = inside
            self.outside = outside
            self.count = count
        }
    }

    /// The namespace's descriptor (`/proc/<pid>/ns/user` of the child that made it).
    public let descriptor: FileDescriptor

    /// Makes a user namespace with these maps. Needs `CAP_SETUID` and `CAP_SETGID` for maps of
    /// more than the caller's own IDs.
    ///
    /// A child is cloned into the new namespace and reaped as soon as its maps are written and
    /// the namespace is opened. The corresponding C function is `clone` with `CLONE_NEWUSER`.
    public init(uidMap: [Range], gidMap: [Range]) throws(Errno) {
        let uidText = Self.mapText(uidMap)
        let gidText = Self.mapText(gidMap)
        let fd = try syscall { strata_userns_open(uidText, gidText) }
        descriptor = FileDescriptor(rawValue: fd)
    }

    deinit { descriptor.closeQuietly() }

    /// The text of a map file.
    static func mapText(_ ranges: [Range]) -> String {
        ranges.map { "\($0.inside) \($0.outside) \($0.count)\n" }.joined()
    }
}
