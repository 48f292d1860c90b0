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
        _ = try syscall { Glibc.lseek(rawValue, 0, SEEK_SET) }
        let capacity = 32 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let filled = try syscall { strata_getdents64(rawValue, buffer, capacity) }
            if filled == 0 { return entries }
            var offset = 0
            while offset < filled {
                // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
                let record = buffer + offset
                let inode = record.loadUnaligned(as: UInt64.self)
                let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                let type = record.load(fromByteOffset: 18, as: UInt8.self)
                let name = (record + 19).assumingMemoryBound(to: CChar.self)
                offset += length
                if name[0] == 0x2E && (name[1] == 0 || (name[1] == 0x2E && name[2] == 0)) { continue }
                entries.append(RawDirectoryEntry(
                    name: FilePath(platformString: name), inode: inode, kind: FileKind(directoryEntryType: type)))
            }
        }
    }
}
