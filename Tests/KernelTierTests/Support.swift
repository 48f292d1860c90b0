#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import TestTiers

struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// Runs a program; throws with its output when it exits non-zero.
@discardableResult
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailed(description: "\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(output)")
    }
    return output
}

/// Finds a tool in the system directories.
func tool(_ name: String) throws -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let path = dir + "/" + name
        if access(path, X_OK) == 0 { return path }
    }
    throw CommandFailed(description: "\(name) is not installed")
}

/// A new directory under TMPDIR (a tmpfs in the kernel tier's guest).
func temporaryDirectory(_ label: String) throws -> String {
    let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    var bytes = Array((base + "/\(label)-XXXXXX").utf8CString)
    guard let made = bytes.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    return String(cString: made)
}

func removeTree(_ path: String) {
    _ = try? run(tool("rm"), ["-rf", path])
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
