import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// How `openat2(2)` may resolve a path.
public struct ResolveFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Treat the directory as the root: `..` and absolute symlinks cannot leave it.
    public static let inRoot = ResolveFlags(rawValue: STRATA_RESOLVE_IN_ROOT)
    /// Fail if resolution would leave the directory.
    public static let beneath = ResolveFlags(rawValue: STRATA_RESOLVE_BENEATH)
    /// Refuse every symlink on the way.
    public static let noSymlinks = ResolveFlags(rawValue: STRATA_RESOLVE_NO_SYMLINKS)
    /// Refuse `/proc/*/fd`-style magic links.
    public static let noMagicLinks = ResolveFlags(rawValue: STRATA_RESOLVE_NO_MAGICLINKS)
    /// Refuse to cross a mount point.
    public static let noCrossDevice = ResolveFlags(rawValue: STRATA_RESOLVE_NO_XDEV)
}

/// How `renameat2(2)` renames.
public struct RenameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Fail with `EEXIST` rather than replace the target.
    public static let noReplace = RenameFlags(rawValue: STRATA_RENAME_NOREPLACE)
    /// Swap the two names atomically.
    public static let exchange = RenameFlags(rawValue: STRATA_RENAME_EXCHANGE)
    /// Leave an overlay whiteout at the old name.
    public static let whiteout = RenameFlags(rawValue: STRATA_RENAME_WHITEOUT)
}

extension FileDescriptor {
    /// Opens `path` relative to this directory.
    ///
    /// The corresponding C function is `openat`.
    public func open(
        at path: FilePath, _ mode: AccessMode, options: OpenOptions = [],
        permissions: FilePermissions? = nil
    ) throws(Errno) -> FileDescriptor {
        let flags = mode.rawValue | options.rawValue | O_CLOEXEC
        let fd = try path.withCPath { p throws(Errno) in
            try syscall { Glibc.openat(self.rawValue, p, flags, permissions?.rawValue ?? 0) }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Opens `path` relative to this directory with raw `open(2)` flags (`O_PATH`, `O_DIRECTORY`…).
    ///
    /// The corresponding C function is `openat`.
    public func open(at path: FilePath, flags: Int32, permissions: mode_t = 0) throws(Errno) -> FileDescriptor {
        let fd = try path.withCPath { p throws(Errno) in
            try syscall { Glibc.openat(self.rawValue, p, flags | O_CLOEXEC, permissions) }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Opens `path` relative to this directory, resolving it under `resolve` rules.
    ///
    /// With `.inRoot`, the path cannot name anything outside this directory, whatever `..`
    /// components or symlinks it holds. The corresponding C function is `openat2`.
    public func open(
        at path: FilePath, flags: Int32, permissions: mode_t = 0, resolve: ResolveFlags
    ) throws(Errno) -> FileDescriptor {
        let fd = try path.withCPath { p throws(Errno) in
            try syscall {
                strata_openat2(self.rawValue, p, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)),
                               UInt64(permissions), resolve.rawValue)
            }
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Opens the directory `path` relative to this one, never following a symlink in its last
    /// component.
    public func openDirectory(at path: FilePath, followLastSymlink: Bool = false) throws(Errno) -> FileDescriptor {
        try open(at: path, flags: O_RDONLY | O_DIRECTORY | (followLastSymlink ? 0 : O_NOFOLLOW))
    }

    /// Opens a directory by path.
    public static func openDirectory(_ path: FilePath) throws(Errno) -> FileDescriptor {
        try FileDescriptor.currentWorkingDirectory.open(at: path, flags: O_RDONLY | O_DIRECTORY)
    }

    /// Makes a directory.
    ///
    /// The corresponding C function is `mkdirat`.
    public func makeDirectory(at path: FilePath, permissions: FilePermissions = .init(rawValue: 0o755)) throws(Errno) {
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.mkdirat(self.rawValue, p, permissions.rawValue) }
        }
    }

    /// Reads a file's status, without following a symlink in the last component unless asked.
    ///
    /// The corresponding C function is `fstatat`.
    public func status(at path: FilePath, followSymlinks: Bool = false) throws(Errno) -> FileStatus {
        var st = Glibc.stat()
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.fstatat(self.rawValue, p, &st, followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW) }
        }
        return FileStatus(st)
    }

    /// Reads the status of the file this descriptor is open on.
    ///
    /// The corresponding C function is `fstat`.
    public func status() throws(Errno) -> FileStatus {
        var st = Glibc.stat()
        try voidSyscall { Glibc.fstat(self.rawValue, &st) }
        return FileStatus(st)
    }

    /// Changes the owner of `path` (of the link itself when it is a symlink, unless asked to follow).
    ///
    /// The corresponding C function is `fchownat`.
    public func changeOwner(
        at path: FilePath, user: UserID?, group: GroupID?, followSymlinks: Bool = false
    ) throws(Errno) {
        let uid = user?.rawValue ?? uid_t.max
        let gid = group?.rawValue ?? gid_t.max
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.fchownat(self.rawValue, p, uid, gid, followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// Changes the owner of the file this descriptor is open on.
    ///
    /// The corresponding C function is `fchown`.
    public func changeOwner(user: UserID?, group: GroupID?) throws(Errno) {
        let uid = user?.rawValue ?? uid_t.max
        let gid = group?.rawValue ?? gid_t.max
        try voidSyscall { Glibc.fchown(self.rawValue, uid, gid) }
    }

    /// Changes the mode bits of `path` (symlinks have none; `path` must not be one).
    ///
    /// The corresponding C function is `fchmodat`.
    public func changeMode(at path: FilePath, permissions: FilePermissions) throws(Errno) {
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.fchmodat(self.rawValue, p, permissions.rawValue, 0) }
        }
    }

    /// Changes the mode bits of the file this descriptor is open on.
    ///
    /// The corresponding C function is `fchmod`.
    public func changeMode(permissions: FilePermissions) throws(Errno) {
        try voidSyscall { Glibc.fchmod(self.rawValue, permissions.rawValue) }
    }

    /// Sets the access and modification times of `path` (of a symlink itself, never its target).
    ///
    /// The corresponding C function is `utimensat`.
    public func setTimes(at path: FilePath, access: FileTime, modification: FileTime) throws(Errno) {
        var times = [access.timespec, modification.timespec]
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.utimensat(self.rawValue, p, &times, AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// Sets the access and modification times of the file this descriptor is open on.
    ///
    /// The corresponding C function is `futimens`.
    public func setTimes(access: FileTime, modification: FileTime) throws(Errno) {
        var times = [access.timespec, modification.timespec]
        try voidSyscall { Glibc.futimens(self.rawValue, &times) }
    }

    /// Makes a device node, FIFO or overlay whiteout (a character device 0/0).
    ///
    /// The corresponding C function is `mknodat`.
    public func makeNode(at path: FilePath, kind: FileKind, permissions: FilePermissions, device: UInt64 = 0) throws(Errno) {
        let mode = kind.modeBits | permissions.rawValue
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.mknodat(self.rawValue, p, mode, dev_t(device)) }
        }
    }

    /// Makes a hard link `newPath` (relative to `newDirectory`) to `oldPath` (relative to this
    /// directory), never following a symlink.
    ///
    /// The corresponding C function is `linkat`.
    public func makeHardLink(from oldPath: FilePath, to newPath: FilePath, in newDirectory: FileDescriptor? = nil) throws(Errno) {
        let target = (newDirectory ?? self).rawValue
        try oldPath.withCPath { o throws(Errno) in
            try newPath.withCPath { n throws(Errno) in
                try voidSyscall { Glibc.linkat(self.rawValue, o, target, n, 0) }
            }
        }
    }

    /// Makes a hard link to the file this descriptor (opened with `O_PATH` or not) is open on.
    ///
    /// The corresponding C function is `linkat` with `STRATA_AT_EMPTY_PATH`.
    public func makeHardLink(to newPath: FilePath, in directory: FileDescriptor) throws(Errno) {
        try newPath.withCPath { n throws(Errno) in
            try voidSyscall { Glibc.linkat(self.rawValue, "", directory.rawValue, n, STRATA_AT_EMPTY_PATH) }
        }
    }

    /// Makes a symbolic link at `path` whose content is `target`.
    ///
    /// The corresponding C function is `symlinkat`.
    public func makeSymbolicLink(at path: FilePath, target: String) throws(Errno) {
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.symlinkat(target, self.rawValue, p) }
        }
    }

    /// Makes a symbolic link at `path` whose content is `target` byte for byte: a link target,
    /// like a file name, is any bytes but NUL and need not be UTF-8.
    ///
    /// The corresponding C function is `symlinkat`.
    public func makeSymbolicLink(at path: FilePath, target: some Collection<UInt8>) throws(Errno) {
        guard !target.contains(0) else { throw Errno.invalidArgument }
        var bytes = target.map { CChar(bitPattern: $0) }
        bytes.append(0)
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.symlinkat(bytes, self.rawValue, p) }
        }
    }

    /// Reads a symbolic link's content.
    ///
    /// The corresponding C function is `readlinkat`.
    public func readSymbolicLink(at path: FilePath) throws(Errno) -> String {
        var capacity = 256
        while true {
            let (count, text): (Int, String) = try path.withCPath { p throws(Errno) in
                var buffer = [CChar](repeating: 0, count: capacity)
                let n = try syscall { Glibc.readlinkat(self.rawValue, p, &buffer, capacity) }
                let bytes = buffer[0..<n].map { UInt8(bitPattern: $0) }
                return (n, String(decoding: bytes, as: UTF8.self))
            }
            if count < capacity { return text }
            capacity *= 4
        }
    }

    /// Renames `oldPath` (relative to this directory) to `newPath` (relative to `newDirectory`).
    ///
    /// The corresponding C function is `renameat2`.
    public func rename(
        _ oldPath: FilePath, to newPath: FilePath, in newDirectory: FileDescriptor? = nil, flags: RenameFlags = []
    ) throws(Errno) {
        let target = (newDirectory ?? self).rawValue
        try oldPath.withCPath { o throws(Errno) in
            try newPath.withCPath { n throws(Errno) in
                try voidSyscall { strata_renameat2(self.rawValue, o, target, n, flags.rawValue) }
            }
        }
    }

    /// Removes a name: a file, or an empty directory when `directory` is true.
    ///
    /// The corresponding C function is `unlinkat`.
    public func remove(at path: FilePath, directory: Bool = false) throws(Errno) {
        try path.withCPath { p throws(Errno) in
            try voidSyscall { Glibc.unlinkat(self.rawValue, p, directory ? AT_REMOVEDIR : 0) }
        }
    }

    /// Whether `path` exists (as any kind of file, a dangling symlink included).
    public func exists(at path: FilePath) -> Bool {
        (try? status(at: path)) != nil
    }

    /// Takes or drops an advisory lock on the whole file.
    ///
    /// The corresponding C function is `flock`.
    public func lock(exclusive: Bool, wait: Bool = true) throws(Errno) {
        let op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        try voidSyscall { strata_flock(self.rawValue, op) }
    }

    /// Drops an advisory lock.
    ///
    /// The corresponding C function is `flock`.
    public func unlock() throws(Errno) {
        try voidSyscall { strata_flock(self.rawValue, LOCK_UN) }
    }

    /// Flushes the file's data and metadata to disk.
    ///
    /// The corresponding C function is `fsync`.
    public func synchronize() throws(Errno) {
        try voidSyscall { Glibc.fsync(self.rawValue) }
    }

    /// Flushes the whole filesystem this descriptor lives on.
    ///
    /// The corresponding C function is `syncfs`.
    public func synchronizeFileSystem() throws(Errno) {
        try voidSyscall { strata_syncfs(self.rawValue) }
    }

    /// Writes all of `buffer`, however many calls it takes.
    public func writeFully(_ buffer: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < buffer.count {
            let n = try syscall { Glibc.write(self.rawValue, buffer.baseAddress! + offset, buffer.count - offset) }
            offset += n
        }
    }

    /// Writes all of `buffer` at `offset`, leaving the file offset alone.
    ///
    /// The corresponding C function is `pwrite`.
    public func writeFully(_ buffer: UnsafeRawBufferPointer, atOffset offset: Int64) throws(Errno) {
        var done = 0
        while done < buffer.count {
            let n = try syscall {
                Glibc.pwrite(self.rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            done += n
        }
    }

    /// Sets the file's size, cutting it or extending it with a hole.
    ///
    /// The corresponding C function is `ftruncate`.
    public func truncate(to size: Int64) throws(Errno) {
        try voidSyscall { Glibc.ftruncate(self.rawValue, off_t(size)) }
    }

    /// Reads up to `buffer.count` bytes; 0 at the end of the file.
    public func readSome(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try syscall { Glibc.read(self.rawValue, buffer.baseAddress, buffer.count) }
    }

    /// Reads the whole file from the current offset.
    public func readToEnd() throws(Errno) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = try chunk.withUnsafeMutableBytes { b in
                valueOrErrno { Glibc.read(self.rawValue, b.baseAddress, b.count) }
            }.get()
            if n == 0 { return result }
            result.append(contentsOf: chunk[0..<n])
        }
    }

    /// Closes the descriptor, ignoring errors (for cleanup paths).
    public func closeQuietly() {
        _ = Glibc.close(rawValue)
    }
}
