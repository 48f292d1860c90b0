import Foundation
// Every file of this target uses the shared helpers (runningAsRoot, scratch directories).
@_exported import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The runtime tier drives everything through programs, as a user would: the `strata` binary of
// this build, runc and crun, tar. These helpers run them and keep their stores apart.

/// Whether `program` is an executable file on this host.
func installed(_ program: String) -> Bool { FileManager.default.isExecutableFile(atPath: program) }

/// A program that did not succeed, with what it printed.
struct ProgramFailure: Error, CustomStringConvertible {
    var command: [String]
    var result: ProgramResult
    var description: String { "\(command.joined(separator: " ")) failed: \(result)" }

    /// A failed step of the test's own set-up, with the reason.
    init(_ what: [String], _ reason: String) {
        self.init(command: what, result: ProgramResult(status: 1, stdout: "", stderr: reason))
    }

    init(command: [String], result: ProgramResult) {
        self.command = command
        self.result = result
    }

    /// A failed system call of the test's set-up, with `errno`'s text.
    static func errno(_ what: [String]) -> ProgramFailure { ProgramFailure(what, String(cString: strerror(Glibc.errno))) }
}

/// Runs a program to its end (killed after `timeout` seconds) and returns its status and output.
/// Its standard input is /dev/null.
func runProgram(_ path: String, _ arguments: [String], timeout: TimeInterval = 120) throws -> ProgramResult {
    try capture(path, arguments, timeout: timeout)
}

/// Runs a program and returns its standard output; throws `ProgramFailure` unless it exits 0.
@discardableResult
func mustRun(_ path: String, _ arguments: [String]) throws -> String {
    let result = try runProgram(path, arguments)
    guard result.status == 0 else { throw ProgramFailure(command: [path] + arguments, result: result) }
    return result.stdout
}

/// A store of its own for one test: `--root` and `--run-root` under a fresh directory, and the
/// runtimes' state directories beside them. The directory is 0755, as `/var/lib` is: the store
/// itself (`<dir>/root`, like `/var/lib/strata`) is made by `strata` with the modes it chooses.
final class RuntimeStore: @unchecked Sendable {
    let dir: String
    var root: String { dir + "/root" }
    var runRoot: String { dir + "/run" }
    var runtimeState: String { dir + "/runtime-state" }

    init() throws {
        dir = try makeScratchDirectory("strata-runtime")
        chmod(dir, 0o755)
    }

    deinit {
        // Whatever a failed test left: the runtimes' containers, then (removing the directory) mounts and files.
        for state in ["runc", "crun"] { try? FileManager.default.removeItem(atPath: runtimeState + "/" + state) }
        _ = try? strata(["cleanup"])
        removeScratchDirectory(dir)
    }

    /// Runs `strata ARGS` on this store.
    func strata(_ arguments: [String]) throws -> ProgramResult {
        try runProgram(strataBinary(), arguments + ["--root", root, "--run-root", runRoot])
    }

    /// Runs `strata ARGS` on this store and returns its output; throws unless it exits 0.
    @discardableResult
    func mustStrata(_ arguments: [String]) throws -> String {
        let result = try strata(arguments)
        guard result.status == 0 else { throw ProgramFailure(command: ["strata"] + arguments, result: result) }
        return result.stdout
    }

    /// The mount points under this store's directory other than the driver's home (`<root>/overlay`,
    /// which the driver bind-mounts private once and keeps, as containers/storage does): what
    /// layer mounts, runtime mounts or leaks are left.
    func leftoverMounts() -> [String] { mountPoints().filter { $0 != root + "/overlay" } }

    /// The mount points under this store's directory, from this process's mountinfo.
    func mountPoints() -> [String] {
        let table = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = String(fields[4])
            return point == dir || point.hasPrefix(dir + "/") ? point : nil
        }
    }
}

/// `ls -ln`-style owners: the numeric owner and group of a listed name.
struct Owner: Equatable, CustomStringConvertible {
    var uid: UInt32
    var gid: UInt32
    var description: String { "\(uid):\(gid)" }
    /// The same owner `offset` IDs higher (a container ID seen on the host).
    func shifted(by offset: UInt32) -> Owner { Owner(uid: uid + offset, gid: gid + offset) }
}

/// The owner of `path` on the host (lstat), or nil when it is missing.
func hostOwner(_ path: String) -> Owner? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return Owner(uid: info.st_uid, gid: info.st_gid)
}

/// Parses `ls -lnd` lines (busybox or GNU): name → owner.
func parseListing(_ lines: [String]) -> [String: Owner] {
    var owners: [String: Owner] = [:]
    for line in lines {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 9, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { continue }
        owners[String(fields[fields.count - 1])] = Owner(uid: uid, gid: gid)
    }
    return owners
}

/// Parses `tar -tv --numeric-owner` output: entry name (without `./`) → owner.
func parseTarListing(_ text: String) -> [String: Owner] {
    var owners: [String: Owner] = [:]
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 6 else { continue }
        let ids = fields[1].split(separator: "/")
        guard ids.count == 2, let uid = UInt32(ids[0]), let gid = UInt32(ids[1]) else { continue }
        var name = String(fields[5])
        if name.hasPrefix("./") { name.removeFirst(2) }
        if name.hasSuffix("/") { name.removeLast() }
        owners[name] = Owner(uid: uid, gid: gid)
    }
    return owners
}
