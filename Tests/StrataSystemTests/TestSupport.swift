import Foundation
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether the tests run as root (the CI machine does; most tests here need it).
let runningAsRoot = geteuid() == 0

/// The trait of a test or suite that needs root, with the reason shown when it is skipped.
let needsRoot = Testing.ConditionTrait.enabled(
    if: runningAsRoot, "needs root: mounts, device nodes, chown, trusted.* xattrs, project IDs")

/// `O_PATH` and `O_TMPFILE` on Linux (the Glibc module does not export them to Swift).
let openPathOnly: Int32 = 0o10_000_000
let openTemporaryFile: Int32 = 0o20_000_000 | O_DIRECTORY

/// A fresh directory under /tmp, removed with everything below it (mounts first) when the test
/// is done with it.
final class TemporaryDirectory {
    let path: FilePath
    let descriptor: FileDescriptor

    init(_ label: String = #function) throws {
        let sanitized = label.filter { $0.isLetter || $0.isNumber }.prefix(40)
        var template = Array("/tmp/strata-system-\(sanitized)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw Errno(rawValue: errno) }
        path = FilePath(String(cString: made))
        descriptor = try FileDescriptor.openDirectory(path)
    }

    /// `path/name` as a path.
    func path(_ name: String) -> FilePath { path.appending(name) }

    /// Writes `text` to a new file `name` with mode `permissions`.
    @discardableResult
    func write(_ name: String, _ text: String, permissions: FilePermissions = .init(rawValue: 0o644)) throws -> FilePath {
        let fd = try descriptor.open(at: FilePath(name), .writeOnly, options: [.create, .truncate],
                                     permissions: permissions)
        defer { fd.closeQuietly() }
        try Array(text.utf8).withUnsafeBytes { try fd.writeFully($0) }
        return path(name)
    }

    /// The contents of file `name`, read through this directory.
    func read(_ name: String) throws -> String {
        let fd = try descriptor.open(at: FilePath(name), .readOnly)
        defer { fd.closeQuietly() }
        return String(decoding: try fd.readToEnd(), as: UTF8.self)
    }

    deinit {
        // Lazily unmount whatever a failed test left mounted below us, deepest first, so that
        // removing the tree never reaches into a mounted filesystem.
        let prefix = path.string + "/"
        let leftovers = Mounts.mountTable().map(\.mountPoint).filter { $0.hasPrefix(prefix) }
        for mountPoint in leftovers.reversed() {
            try? Mounts.unmount(FilePath(mountPoint), flags: .detach)
        }
        try? FileDescriptor.currentWorkingDirectory.removeTree(at: path)
        descriptor.closeQuietly()
    }
}

extension FileDescriptor {
    /// Runs `body` with this descriptor, closing it afterwards.
    func closing<R>(_ body: (FileDescriptor) throws -> R) rethrows -> R {
        defer { closeQuietly() }
        return try body(self)
    }
}

/// Runs a command, returning its exit status and standard output.
@discardableResult
func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Expects `body` to fail with exactly `expected`.
///
/// (`#expect(throws:)` cannot take a closure that Swift infers as `throws(Errno)`, which every
/// StrataSystem call is; this takes an untyped one.)
func expectErrno<R>(
    _ expected: Errno, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> R
) {
    do {
        _ = try body()
        Issue.record("expected \(expected), but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as Errno {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}
