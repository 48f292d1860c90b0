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

/// A file's owner, as chown takes it.
struct Ownership: Sendable, Hashable {
    var uid: UInt32
    var gid: UInt32
}

/// One extended attribute with its value, byte for byte.
struct AttributeValue: Sendable, Hashable {
    var name: String
    var value: [UInt8]
}

/// One change to one name: a new owner, attributes to write after the chown, and the mode to
/// put back last (chown clears setuid and setgid). It carries its own undo: the old owner and
/// the old value of every attribute it writes.
struct EntryChange: Sendable, Hashable {
    var name: FilePath
    var owner: Ownership?
    var attributes: [AttributeValue] = []
    var mode: FilePermissions?
    /// The owner before the change (set when `owner` is).
    var oldOwner: Ownership?
    /// The value each of `attributes` had before, in the same order.
    var oldAttributes: [AttributeValue] = []

    /// The change that puts back what this one changes.
    ///
    /// Applying it is right whether this change was made, half made or not made at all: it sets
    /// the old owner (chown again clears setuid/setgid and `security.capability`), writes every
    /// old attribute value (the capability included) and then the old mode.
    var undo: EntryChange {
        EntryChange(name: name, owner: oldOwner, attributes: oldAttributes, mode: mode)
    }

    var isEmpty: Bool { owner == nil && attributes.isEmpty && mode == nil }
}

/// The changes inside one directory, which is named by its path below the tree's root
/// (`""` for the root; the root's own change is the entry named `.`).
struct DirectoryPlan: Sendable, Hashable {
    var path: FilePath
    var entries: [EntryChange] = []

    /// The plan that undoes this one.
    var undo: DirectoryPlan { DirectoryPlan(path: path, entries: entries.map(\.undo)) }
}
