import CAttr
import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Variants of the `*at` and xattr calls that take a name as a NUL-terminated C string and fill
/// caller-owned buffers, for tree walks that touch hundreds of thousands of files: no `FilePath`
/// or `String` is built per call, and names that are not UTF-8 pass through byte for byte.
extension FileDescriptor {
    /// Reads the status of `name` in this directory, never following a symlink in it.
    ///
    /// The corresponding C function is `fstatat` with `AT_SYMLINK_NOFOLLOW`.
    @inlinable
    public func status(atRawName name: UnsafePointer<CChar>) throws(Errno) -> FileStatus {
        var st = Glibc.stat()
        try voidSyscall { Glibc.fstatat(self.rawValue, name, &st, AT_SYMLINK_NOFOLLOW) }
        return FileStatus(st)
    }

    /// Opens `name` in this directory with raw `open(2)` flags (`O_CLOEXEC` is always added).
    ///
    /// The corresponding C function is `openat`.
    @inlinable
    public func open(atRawName name: UnsafePointer<CChar>, flags: Int32) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try syscall { Glibc.openat(self.rawValue, name, flags | O_CLOEXEC, 0) })
    }

    /// Reads the content of the symbolic link `name` in this directory into `buffer`; returns the
    /// number of bytes (the content is not NUL-terminated, and is cut at `buffer.count`).
    ///
    /// The corresponding C function is `readlinkat`.
    @inlinable
    public func readSymbolicLink(atRawName name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try syscall { Glibc.readlinkat(self.rawValue, name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count) }
    }

    /// Lists the open file's xattr names into `buffer` as NUL-separated names; returns the bytes
    /// used (0 when there are none or the filesystem has no xattrs). Throws `ERANGE` when the
    /// buffer is too small.
    ///
    /// The corresponding C function is `flistxattr`.
    @inlinable
    public func extendedAttributeNames(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        switch valueOrErrno({ flistxattr(rawValue, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count) }) {
        case .success(let n): return n
        case .failure(.notSupported): return 0
        case .failure(let e): throw e
        }
    }

    /// Reads the open file's xattr `name` into `buffer`; `nil` when it has none of that name.
    /// Throws `ERANGE` when the buffer is too small.
    ///
    /// The corresponding C function is `fgetxattr`.
    @inlinable
    public func extendedAttribute(rawName name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        switch valueOrErrno({ fgetxattr(rawValue, name, buffer.baseAddress, buffer.count) }) {
        case .success(let n): return n
        case .failure(.noData), .failure(.notSupported): return nil
        case .failure(let e): throw e
        }
    }

    /// Lists the xattr names of `name` in this directory (of a symlink itself) into `buffer`.
    ///
    /// Goes through `/proc/self/fd/<dir>/<name>` so that the lookup stays anchored on this
    /// directory. The corresponding C function is `llistxattr`.
    public func extendedAttributeNames(atRawName name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        let path = anchoredPath(rawName: name)
        switch valueOrErrno({ llistxattr(path, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count) }) {
        case .success(let n): return n
        case .failure(.notSupported): return 0
        case .failure(let e): throw e
        }
    }

    /// Reads the xattr `attribute` of `name` in this directory (of a symlink itself) into
    /// `buffer`; `nil` when absent.
    ///
    /// The corresponding C function is `lgetxattr`.
    public func extendedAttribute(
        rawName attribute: UnsafePointer<CChar>, atRawName name: UnsafePointer<CChar>, into buffer: UnsafeMutableRawBufferPointer
    ) throws(Errno) -> Int? {
        let path = anchoredPath(rawName: name)
        switch valueOrErrno({ lgetxattr(path, attribute, buffer.baseAddress, buffer.count) }) {
        case .success(let n): return n
        case .failure(.noData), .failure(.notSupported): return nil
        case .failure(let e): throw e
        }
    }

}
