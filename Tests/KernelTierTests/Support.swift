#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import TestSupport
import TestTiers

/// Finds a tool in the system directories.
func tool(_ name: String) throws -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = dir + "/" + name
        if access(path, X_OK) == 0 { return path }
    }
    throw CommandFailed(description: "\(name) is not installed")
}

/// Writes `count` bytes of zeros to a new file, 64 KiB at a time, and syncs it.
/// Returns nil when every write succeeded, else the errno of the first failure.
func writeFile(_ path: String, bytes count: Int) -> Int32? {
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return errno }
    var failure: Int32?
    let chunk = [UInt8](repeating: 0, count: 64 << 10)
    var written = 0
    while written < count {
        let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, count - written)) }
        if n < 0 {
            failure = errno
            break
        }
        written += n
    }
    if failure == nil, fsync(fd) != 0 { failure = errno }
    if close(fd) != 0, failure == nil { failure = errno }
    return failure
}
