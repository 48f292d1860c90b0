import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The owner, mode, extended attributes and times to give a file once it exists, already mapped
/// to host IDs. Applied in the order that keeps every piece: `chown` first (it clears setuid,
/// setgid and `security.capability`), then `chmod`, then the xattrs, then the times.
struct FileMetadata: @unchecked Sendable {
    var uid: UInt32
    var gid: UInt32
    var permissions: mode_t
    var xattrs: [(name: String, value: [UInt8])]
    var accessTime: FileTime
    var modificationTime: FileTime
    /// Keep going when `chown` is refused (rootless hosts).
    var ignoreChownErrors: Bool
    /// The entry's path, for error messages.
    var path: String

    /// Applies everything to an open regular file or directory.
    func apply(to fd: FileDescriptor, setTimes: Bool) throws(StorageError) {
        try attempt("apply diff", path) { () throws(Errno) in
            do throws(Errno) {
                try fd.changeOwner(user: UserID(rawValue: uid), group: GroupID(rawValue: gid))
            } catch where ignoreChownErrors && (error == .notPermitted || error == .invalidArgument) {}
            try fd.changeMode(permissions: FilePermissions(rawValue: permissions))
            for (name, value) in xattrs {
                do throws(Errno) {
                    try fd.setExtendedAttribute(name, value)
                } catch .notSupported {}
            }
            if setTimes {
                try fd.setTimes(access: accessTime, modification: modificationTime)
            }
        }
    }

    /// Applies everything to `name` in `directory` without opening it (symlinks, devices, FIFOs).
    func apply(at name: FilePath, in directory: FileDescriptor, isSymlink: Bool) throws(StorageError) {
        try attempt("apply diff", path) { () throws(Errno) in
            do throws(Errno) {
                try directory.changeOwner(at: name, user: UserID(rawValue: uid), group: GroupID(rawValue: gid))
            } catch where ignoreChownErrors && (error == .notPermitted || error == .invalidArgument) {}
            if !isSymlink {
                try directory.changeMode(at: name, permissions: FilePermissions(rawValue: permissions))
            }
            for (xattrName, value) in xattrs {
                // Only trusted.* and security.* may be set on a symlink itself.
                if isSymlink && xattrName.hasPrefix("user.") { continue }
                do throws(Errno) {
                    try directory.setExtendedAttribute(xattrName, value, at: name)
                } catch .notSupported {} catch .notPermitted where isSymlink {}
            }
            try directory.setTimes(at: name, access: accessTime, modification: modificationTime)
        }
    }
}
