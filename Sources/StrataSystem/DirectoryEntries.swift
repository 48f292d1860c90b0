import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One name in a directory, as `getdents64(2)` returns it.
public struct DirectoryEntry: Sendable, Hashable {
    /// The entry's name (never `.` or `..`).
    public var name: String
    /// The inode number.
    public var inode: UInt64
    /// The kind of file, or `.unknown` where the filesystem does not store it (no d_type).
    public var kind: FileKind
}

extension FileDescriptor {
    /// Lists this directory's entries, except `.` and `..`, in the order the filesystem keeps them.
    ///
    /// Reads with `getdents64(2)` into a 32 KiB buffer: one system call for hundreds of names.
    /// The descriptor's offset is rewound first, so the call can be repeated.
    public func directoryEntries() throws(Errno) -> [DirectoryEntry] {
        var entries: [DirectoryEntry] = []
        try forEachDirectoryEntry { entries.append($0) }
        return entries
    }

    /// Calls `body` for each entry of this directory, except `.` and `..`.
    public func forEachDirectoryEntry(_ body: (DirectoryEntry) throws(Errno) -> Void) throws(Errno) {
        try forEachDirectoryEntryName { (name, inode, kind) throws(Errno) in
            let text = String(decoding: UnsafeRawBufferPointer(start: name, count: strlen(name)), as: UTF8.self)
            try body(DirectoryEntry(name: text, inode: inode, kind: kind))
        }
    }

    /// Calls `body` with each entry's name as the kernel gave it (NUL-terminated, valid only
    /// during the call), its inode and its kind, except `.` and `..`: no string is made per entry.
    /// This is the one loop over `getdents64(2)` records; the other listings are built on it.
    public func forEachDirectoryEntryName(
        _ body: (UnsafePointer<CChar>, UInt64, FileKind) throws(Errno) -> Void
    ) throws(Errno) {
        _ = try syscall { Glibc.lseek(rawValue, 0, SEEK_SET) }
        let capacity = 32 * 1024
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        defer { buffer.deallocate() }
        while true {
            let filled = try syscall { strata_getdents64(rawValue, buffer, capacity) }
            if filled == 0 { return }
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
                try body(name, inode, FileKind(directoryEntryType: type))
            }
        }
    }

    /// Removes everything below this directory (not the directory itself), never following a
    /// symlink and never crossing into a mount point's contents: a mount point below it (a bind
    /// mount of the same filesystem included) stops the removal with `EXDEV`, and nothing on the
    /// mounted filesystem is touched.
    public func removeContents() throws(Errno) {
        // Raw names: a name that is not UTF-8 must reach the file it names.
        for entry in try rawDirectoryEntries() {
            try removeTree(at: entry.name, kind: entry.kind, mayCrossMount: false)
        }
    }

    /// Removes `path` and, when it is a directory, everything below it. `path` itself may lie
    /// across mount points; below it, as for `removeContents()`, none is crossed.
    public func removeTree(at path: FilePath, kind: FileKind = .unknown) throws(Errno) {
        try removeTree(at: path, kind: kind, mayCrossMount: true)
    }

    private func removeTree(at path: FilePath, kind: FileKind, mayCrossMount: Bool) throws(Errno) {
        var kind = kind
        if kind == .unknown {
            do throws(Errno) { kind = try status(at: path).kind } catch .noSuchFileOrDirectory { return }
        }
        if kind != .directory {
            do throws(Errno) { try remove(at: path) } catch .noSuchFileOrDirectory {}
            return
        }
        let child: FileDescriptor
        do throws(Errno) {
            child = mayCrossMount
                ? try openDirectory(at: path)
                : try open(at: path, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW, resolve: .noCrossDevice)
        } catch .noSuchFileOrDirectory { return }
        defer { child.closeQuietly() }
        try child.removeContents()
        do throws(Errno) { try remove(at: path, directory: true) } catch .noSuchFileOrDirectory {}
    }
}
