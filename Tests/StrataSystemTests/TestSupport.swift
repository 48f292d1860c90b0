import Foundation
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (needsRoot, sh, scratch directories).
@_exported import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

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
        path = FilePath(try makeScratchDirectory("strata-system-\(sanitized)"))
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
        // Whatever a failed test left mounted below us is detached first.
        descriptor.closeQuietly()
        removeScratchDirectory(path.string)
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
