import Foundation
import GraphDriver
import SystemPackage
import TestSupport

/// A driver under test and how to dispose of it.
public struct DriverHarness: Sendable {
    /// The driver, on a fresh, empty home.
    public let driver: any DiffDriver
    /// Unmounts and deletes everything the driver made.
    public let teardown: @Sendable () -> Void

    public init(driver: any DiffDriver, teardown: @escaping @Sendable () -> Void) {
        self.driver = driver
        self.teardown = teardown
    }
}

/// Makes a driver on a fresh home, once per conformance check.
public typealias DriverFactory = @Sendable () throws -> DriverHarness

/// A conformance check that did not hold.
public struct ConformanceFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Throws a `ConformanceFailure` unless `condition` holds.
func require(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) throws {
    if !condition { throw ConformanceFailure("\(file):\(line): \(message())") }
}

/// A layer ID from a literal.
func id(_ text: String) -> LayerID { try! LayerID(text) }

/// Small file helpers over a mounted layer's root.
public enum Files {
    /// Writes `text` at `path` inside `root`, making missing directories.
    public static func write(_ text: String, at path: String, in root: FilePath) throws {
        let url = URL(fileURLWithPath: root.appending(path).string)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// The text of the file at `path` inside `root`, or `nil`.
    public static func read(_ path: String, in root: FilePath) -> String? {
        (try? Data(contentsOf: URL(fileURLWithPath: root.appending(path).string))).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether anything is at `path` inside `root` (without following a final symlink).
    public static func exists(_ path: String, in root: FilePath) -> Bool {
        var st = stat()
        return lstat(root.appending(path).string, &st) == 0
    }

    /// Removes `path` inside `root` and everything under it.
    public static func remove(_ path: String, in root: FilePath) throws {
        try FileManager.default.removeItem(atPath: root.appending(path).string)
    }

    /// The names in the directory at `path` inside `root`, sorted.
    public static func list(_ path: String = "", in root: FilePath) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path.isEmpty ? root.string : root.appending(path).string).sorted()
    }

    /// The permission bits of `path` (not following a final symlink).
    public static func mode(of path: FilePath) throws -> UInt32 {
        var st = stat()
        guard lstat(path.string, &st) == 0 else { throw ConformanceFailure("lstat \(path): errno \(errno)") }
        return UInt32(st.st_mode) & 0o7777
    }

    /// Runs a shell command, throwing when it fails.
    public static func shell(_ command: String) throws {
        try sh(command)
    }

    /// A fresh temporary directory on the machine's disk.
    public static func temporaryDirectory(_ prefix: String = "strata") throws -> FilePath {
        FilePath(try makeScratchDirectory(prefix))
    }
}

extension GraphDriver {
    /// Mounts a layer, runs `body` on its root, and releases the mount whatever happens.
    public func withMount<R>(_ id: LayerID, options: MountOptions = MountOptions(), _ body: (FilePath) throws -> R) throws -> R {
        let root = try get(id, options: options)
        defer { try? put(id) }
        return try body(root)
    }
}
