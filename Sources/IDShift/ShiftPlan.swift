import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The names of the extended attributes a shift rewrites.
enum ShiftedAttribute {
    static let capability = "security.capability"
    static let aclAccess = "system.posix_acl_access"
    static let aclDefault = "system.posix_acl_default"
    static let overrideStat = "user.containers.override_stat"
}

/// One change to one name: a new owner, attributes to write after the chown, and the mode to
/// put back last (chown clears setuid and setgid).
struct EntryChange: Sendable {
    var name: FilePath
    var owner: (uid: UInt32, gid: UInt32)?
    var attributes: [(name: String, value: [UInt8])] = []
    var mode: FilePermissions?
}

/// The changes inside one directory, which is named by its path below the tree's root
/// (`""` for the root; the root's own change is the entry named `.`).
struct DirectoryPlan: Sendable {
    var path: FilePath
    var entries: [EntryChange] = []
}
