import ContainerdSnapshotter
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import StrataSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether the tests run as root (they mount overlays, and containerd needs root).
let runningAsRoot = getuid() == 0

/// A fresh directory under /var/tmp (not tmpfs: overlay upper directories need xattrs the
/// tests' filesystems all have) or under `base`, removed with whatever a failed test left mounted in it.
final class Scratch: @unchecked Sendable {
    let path: String
    init(_ name: String = "snap", in base: String = "/var/tmp") {
        var template = Array("\(base)/strata-\(name)-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        // Searchable by anyone: a user-namespaced container's root (a high host ID) must reach
        // its rootfs under here.
        chmod(path, 0o755)
    }
    deinit {
        // The whole table, read to its end: Foundation's String(contentsOfFile:) gave only the
        // first 4,000 bytes of it here, missed the later mounts (the home's bind mount that
        // `strata check` leaves) and left these directories behind.
        for entry in Mounts.mountTable().reversed() where entry.mountPoint == path || entry.mountPoint.hasPrefix(path + "/") {
            umount2(entry.mountPoint, Int32(MNT_DETACH))
        }
        try? FileManager.default.removeItem(atPath: path)
    }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// A program beside the test bundle (built by the same `swift build`).
func builtProgram(_ name: String) -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent(name).path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent(name).path
}

/// Runs a program to its end; returns its status, stdout and stderr.
@discardableResult
func run(_ path: String, _ arguments: [String], environment: [String: String]? = nil,
         directory: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes at once: a full stderr pipe must not stall the program.
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Waits until `path` accepts a unix-socket connection (or `seconds` pass).
func waitForSocket(_ path: String, seconds: Double = 30) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes + [0])
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
        close(fd)
        if ok { return true }
        usleep(20_000)
    }
    return false
}

/// A `strata-snapshotter` process serving a scratch root.
final class SnapshotterProcess: @unchecked Sendable {
    let socket: String
    let root: String
    let runRoot: String
    let config: String
    private(set) var process: Process?
    let log: String

    init(in scratch: Scratch, name: String = "sn", configText: String = "") throws {
        socket = scratch.sub("\(name).sock")
        root = scratch.sub("\(name)-root")
        runRoot = scratch.sub("\(name)-run")
        config = scratch.sub("\(name).conf")
        log = scratch.sub("\(name).log")
        try "[snapshotter]\nrun_root = \"\(runRoot)\"\n\(configText)".write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Starts it (with `killAt` as its crash point) and waits for its socket.
    func start(killAt: String? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: builtProgram("strata-snapshotter"))
        process.arguments = ["--socket", socket, "--root", root, "--config", config, "--log-level", "info"]
        var environment = ProcessInfo.processInfo.environment
        environment["STRATA_SNAPSHOTTER_KILL_AT"] = killAt
        process.environment = environment
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        guard waitForSocket(socket) else {
            throw SnapshotterTestError("strata-snapshotter did not serve \(socket): \(logText)")
        }
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits for the process to end (after a crash point) and returns how it ended.
    func waitForExit() -> (reason: Process.TerminationReason, status: Int32) {
        guard let process else { return (.exit, -1) }
        process.waitUntilExit()
        return (process.terminationReason, process.terminationStatus)
    }

    /// SIGTERM and wait.
    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    /// Runs `body` with a client of its socket.
    func withClient<T: Sendable>(_ body: @Sendable (Containerd_Services_Snapshots_V1_Snapshots.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withGRPCClient(transport: .http2NIOPosix(target: .unixDomainSocket(path: socket), transportSecurity: .plaintext)) { client in
            try await body(Containerd_Services_Snapshots_V1_Snapshots.Client(wrapping: client))
        }
    }
}

struct SnapshotterTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The gRPC status code `body` fails with (nil when it succeeds).
func statusCode(_ body: () async throws -> Void) async -> RPCError.Code? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// Builds requests tersely.
enum Request {
    static func prepare(_ key: String, parent: String = "", labels: [String: String] = [:]) -> Containerd_Services_Snapshots_V1_PrepareSnapshotRequest {
        var r = Containerd_Services_Snapshots_V1_PrepareSnapshotRequest()
        r.snapshotter = "strata"
        r.key = key
        r.parent = parent
        r.labels = labels
        return r
    }
    static func view(_ key: String, parent: String) -> Containerd_Services_Snapshots_V1_ViewSnapshotRequest {
        var r = Containerd_Services_Snapshots_V1_ViewSnapshotRequest()
        r.key = key
        r.parent = parent
        return r
    }
    static func commit(_ name: String, key: String) -> Containerd_Services_Snapshots_V1_CommitSnapshotRequest {
        var r = Containerd_Services_Snapshots_V1_CommitSnapshotRequest()
        r.name = name
        r.key = key
        return r
    }
    static func remove(_ key: String) -> Containerd_Services_Snapshots_V1_RemoveSnapshotRequest {
        var r = Containerd_Services_Snapshots_V1_RemoveSnapshotRequest()
        r.key = key
        return r
    }
    static func stat(_ key: String) -> Containerd_Services_Snapshots_V1_StatSnapshotRequest {
        var r = Containerd_Services_Snapshots_V1_StatSnapshotRequest()
        r.key = key
        return r
    }
    static func mounts(_ key: String) -> Containerd_Services_Snapshots_V1_MountsRequest {
        var r = Containerd_Services_Snapshots_V1_MountsRequest()
        r.key = key
        return r
    }
    static func list(_ filters: [String] = []) -> Containerd_Services_Snapshots_V1_ListSnapshotsRequest {
        var r = Containerd_Services_Snapshots_V1_ListSnapshotsRequest()
        r.filters = filters
        return r
    }
}
