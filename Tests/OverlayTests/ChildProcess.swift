import DriverConformance
import Foundation
import GraphDriver
import IDShift
import Overlay
import SystemPackage
import Testing

/// Runs driver operations in another process: the test binary re-runs itself with a filter
/// that selects `ChildProcessEntry`, which reads its orders from the environment.
enum ChildProcess {
    static let variable = "STRATA_OVERLAY_CHILD"

    /// Runs `commands` (`get ID`, `put ID`, `churn PREFIX COUNT BASE`, `remap ID MAP KILL_AFTER`)
    /// on the store in a child process; returns its exit status.
    @discardableResult
    static func run(_ store: TemporaryStore, _ commands: [String]) throws -> Int32 {
        let process = try start(store, commands)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// What child processes on this store reported as failures.
    static func errors(_ store: TemporaryStore) -> String {
        Files.read("child-errors.log", in: store.root) ?? ""
    }

    static func start(_ store: TemporaryStore, _ commands: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--testing-library", "swift-testing", "--filter", "ChildProcessEntry"]
        var environment = ProcessInfo.processInfo.environment
        environment[variable] = ([store.root.string] + commands).joined(separator: ";")
        process.environment = environment
        // The child's test-runner chatter is of no interest; its own failures are appended to
        // `<store>/child-errors.log` (see `errors(_:)`).
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        return process
    }
}

@Suite struct ChildProcessEntry {
    /// Runs only when started by `ChildProcess` (skipped in a normal run); runs its commands and exits.
    @Test(.enabled(if: ProcessInfo.processInfo.environment[ChildProcess.variable] != nil,
                   "entry point for ChildProcess; runs only in a child"))
    func childProcessEntry() throws {
        let orders = try #require(ProcessInfo.processInfo.environment[ChildProcess.variable])
        var parts = orders.split(separator: ";").map(String.init)
        let root = FilePath(parts.removeFirst())
        let driver = try OverlayDriver(home: root.appending("home"), runHome: root.appending("run"),
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]))
        var status: Int32 = 0
        for command in parts {
            let words = command.split(separator: " ").map(String.init)
            do {
                switch words[0] {
                case "get": _ = try driver.get(LayerID(words[1]), options: MountOptions())
                case "put": try driver.put(LayerID(words[1]))
                case "churn":
                    try churn(driver, prefix: words[1], count: Int(words[2])!, base: LayerID(words[3]))
                case "remap":
                    // Remaps to MAP (uids and gids alike) with a shifter that kills this process
                    // (SIGKILL) after KILL_AFTER entries: a crash at a chosen point.
                    // An optional fifth word names the tree the fault is injected into.
                    let injected = ShiftOptions(threads: 1, faultInjection: .kill(afterEntries: Int(words[3])!),
                                                faultInjectionTree: words.count > 4 ? words[4] : nil)
                    let remapper = try OverlayDriver(home: root.appending("home"), runHome: root.appending("run"),
                                                     options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                                     shifter: LayerShifter(home: root.appending("home"), options: injected))
                    remapper.shiftsParentsByCopy = true  // a child's remap copies its parents (diff1)
                    let id = try LayerID(words[1])
                    let ranges = try IDMap.parseList(words[2])
                    try remapper.updateLayerIDMap(id, toContainer: remapper.idMappings(of: id),
                                                  toHost: IDMappings(uidMap: ranges, gidMap: ranges), mountLabel: nil)
                default: status = 3
                }
            } catch {
                let log = root.appending("child-errors.log").string
                if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
                if let handle = FileHandle(forWritingAtPath: log) {
                    handle.seekToEndOfFile()
                    handle.write(Data("child \(getpid()): \(command): \(error)\n".utf8))
                    try? handle.close()
                }
                status = 2
            }
        }
        exit(status)
    }
}

/// Creates, fills, mounts, reads, unmounts and removes `count` layers on `base`, and mounts the
/// shared base meanwhile: the work concurrent processes do on one store.
func churn(_ driver: OverlayDriver, prefix: String, count: Int, base: LayerID) throws {
    for i in 0..<count {
        let layer = try LayerID("\(prefix)-\(i)")
        try driver.createReadWrite(layer, parent: base, options: CreateOptions())
        let root = try driver.get(layer, options: MountOptions())
        try Files.write("\(i)", at: "own", in: root)
        guard Files.read("base", in: root) == "base" else { throw ConformanceFailure("\(layer) does not show base") }
        let shared = try driver.get(base, options: MountOptions(readOnly: true))
        guard Files.read("base", in: shared) == "base" else { throw ConformanceFailure("base mount is wrong") }
        try driver.put(base)
        try driver.put(layer)
        if i % 2 == 0 { try driver.remove(layer) }
    }
}
