import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a system call that returns -1 on failure, retrying while it fails with `EINTR`.
///
/// Every wrapper in StrataSystem goes through this one function, so a signal never surfaces as
/// a spurious error and every failure becomes a typed `Errno`.
@inline(__always)
@usableFromInline
func valueOrErrno<I: FixedWidthInteger>(_ call: () -> I) -> Result<I, Errno> {
    while true {
        let value = call()
        if value != -1 { return .success(value) }
        let code = Errno(rawValue: strata_errno())
        if code != .interrupted { return .failure(code) }
    }
}

/// Like `valueOrErrno(_:)`, throwing the error.
@inline(__always)
@usableFromInline
func syscall<I: FixedWidthInteger>(_ call: () -> I) throws(Errno) -> I {
    try valueOrErrno(call).get()
}

/// Like `syscall(_:)`, for calls whose value is only a success flag.
@inline(__always)
@usableFromInline
func voidSyscall<I: FixedWidthInteger>(_ call: () -> I) throws(Errno) {
    _ = try valueOrErrno(call).get()
}

extension FileDescriptor {
    /// The descriptor that stands for "the current working directory" in the `*at` calls.
    public static let currentWorkingDirectory = FileDescriptor(rawValue: AT_FDCWD)
}

extension FilePath {
    /// Calls `body` with the path as a NUL-terminated C string.
    @inline(__always)
    @usableFromInline
    func withCPath<R>(_ body: (UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
        let result: Result<R, Errno> = self.withPlatformString { pointer in
            do throws(Errno) { return .success(try body(pointer)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
