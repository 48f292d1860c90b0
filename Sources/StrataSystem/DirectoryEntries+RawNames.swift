import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One name in a directory with its bytes exactly as the filesystem keeps them.
///
/// A Linux file name is any bytes but `/` and NUL, not necessarily UTF-8; a walk that must reach
/// every file (an ownership shift) cannot go through `String`, which would replace bytes that are
/// not UTF-8 and so name another file, or none.
public struct RawDirectoryEntry: Sendable, Hashable {
    /// The entry's name as a one-component path, byte for byte (never `.` or `..`).
    public var name: FilePath
    /// The inode number.
    public var inode: UInt64
    /// The kind of file, or `.unknown` where the filesystem does not store it (no d_type).
    public var kind: FileKind
}

extension FileDescriptor {
    /// Lists this directory's entries, except `.` and `..`, with their names byte for byte.
    ///
    /// The corresponding C function is `getdents64`; the descriptor's offset is rewound first.
    public func rawDirectoryEntries() throws(Errno) -> [RawDirectoryEntry] {
        var entries: [RawDirectoryEntry] = []
        try forEachDirectoryEntryName { (name, inode, kind) throws(Errno) in
            entries.append(RawDirectoryEntry(name: FilePath(platformString: name), inode: inode, kind: kind))
        }
        return entries
    }
}
