import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fresh directory `<base>/<label>-XXXXXX` (made by `mkdtemp`, mode 0700).
///
/// The test that makes one removes it again: ``removeScratchDirectory(_:)``, or a
/// ``ScratchDirectory`` that does so when it goes away.
public func makeScratchDirectory(_ label: String, in base: String = "/tmp") throws -> String {
    var template = Array("\(base)/\(label)-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
    return String(cString: made)
}

/// The directory for scratch files: `$TMPDIR` when it is set (the kernel tier's guest sets it to
/// a tmpfs), else /tmp.
public var temporaryBase: String {
    ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
}

/// Removes a scratch directory and everything below it: first detaches whatever is still
/// mounted at or below it (deepest first, so that a failed test's mounts do not keep it), then
/// removes the tree without crossing into another filesystem.
public func removeScratchDirectory(_ path: String) {
    for mountPoint in mountPoints(atOrBelow: path) { umount2(mountPoint, Int32(MNT_DETACH)) }
    _ = try? run("/bin/rm", ["-rf", "--one-file-system", path])
}

/// The mount points at or below `root` in this process's mount table, deepest first.
public func mountPoints(atOrBelow root: String) -> [String] {
    // Read to the end: String(contentsOfFile:) stops after the first read, one page of the table.
    let handle = FileHandle(forReadingAtPath: "/proc/self/mountinfo")
    defer { try? handle?.close() }
    let table = String(decoding: (try? handle?.readToEnd()) ?? Data(), as: UTF8.self)
    let points = table.split(separator: "\n").compactMap { line -> String? in
        let fields = line.split(separator: " ")
        return fields.count > 4 ? unescapedMountPoint(fields[4]) : nil
    }
    return points.filter { $0 == root || $0.hasPrefix(root + "/") }.sorted { $0.count > $1.count }
}

/// A mount point as /proc/self/mountinfo writes it, with `\NNN` octal escapes for space, tab,
/// newline and backslash, decoded.
private func unescapedMountPoint(_ field: Substring) -> String {
    var bytes: [UInt8] = []
    var rest = Array(field.utf8)[...]
    while let byte = rest.popFirst() {
        if byte == UInt8(ascii: "\\"), rest.count >= 3, let code = UInt8(String(decoding: rest.prefix(3), as: UTF8.self), radix: 8) {
            bytes.append(code)
            rest = rest.dropFirst(3)
        } else {
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// A scratch directory for one test, removed (mounts below it first) when it goes away or when
/// ``remove()`` is called.
public final class ScratchDirectory: @unchecked Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Makes `<base>/<label>-XXXXXX`; a test cannot go on without it, so failing to is fatal.
    public init(_ label: String = "strata-test", in base: String = "/tmp") {
        do {
            path = try makeScratchDirectory(label, in: base)
        } catch {
            preconditionFailure("cannot make a scratch directory \(base)/\(label)-XXXXXX: \(error)")
        }
    }

    deinit { remove() }

    /// Removes the directory and everything below it now.
    public func remove() { removeScratchDirectory(path) }

    /// `path/relative` (the directory itself for an empty `relative`).
    public func callAsFunction(_ relative: String) -> String { relative.isEmpty ? path : path + "/" + relative }

    /// Writes `bytes` to the new file `name` and returns its path.
    @discardableResult
    public func file(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    /// Makes the subdirectory `name` (and its parents) and returns its path.
    @discardableResult
    public func directory(_ name: String) -> String {
        let p = path + "/" + name
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}
