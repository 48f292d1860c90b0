import Foundation
import Testing

/// The reliability programs (scripts/reliability) in small doses: a few crash-injection trials
/// and a short concurrency run against the built `strata`. The long runs are run by hand:
/// `scripts/reliability/crash-inject.py --trials 200`, `scripts/reliability/concurrency.py --seconds 30`.
@Suite("Reliability (crash injection, concurrency, check)", .serialized,
       .enabled(if: geteuid() == 0, "needs root to mount overlays"))
struct ReliabilityTests {
    /// The package root: three levels above this file.
    private static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private func runScript(_ name: String, _ arguments: [String]) throws -> (Int32, String) {
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        return try runProgram("/usr/bin/env", ["python3", Self.packageRoot.appendingPathComponent("scripts/reliability/\(name)").path,
                                               "--strata", strataBinary()] + arguments, environment: environment)
    }

    @Test("10 crash-injection trials: check passes (after cleanup) and layers are whole or absent")
    func crashInjection() throws {
        let (status, output) = try runScript("crash-inject.py", ["--trials", "10"])
        #expect(status == 0, "\(output)")
    }

    @Test("4 processes for 8 s on one store: expected errors only, no leaked mount, check clean")
    func concurrency() throws {
        let (status, output) = try runScript("concurrency.py", ["--workers", "4", "--seconds", "8"])
        #expect(status == 0, "\(output)")
    }

    @Test("strata check reports a broken store with status 1; check --repair fixes it")
    func checkCommand() throws {
        let store = Store()
        try strata(store, ["create-layer", "base"])
        #expect(try strata(store, ["check"]).status == 0)
        let home = store.root + "/root/overlay"
        let link = try String(contentsOfFile: home + "/base/link", encoding: .utf8)
        try FileManager.default.removeItem(atPath: home + "/l/" + link)
        try FileManager.default.createDirectory(atPath: home + "/staging/create-x-1", withIntermediateDirectories: true)
        let broken = try strata(store, ["check"])
        #expect(broken.status == 1)
        #expect(broken.stdout.contains("missing short link"), "\(broken.stdout)")
        #expect(broken.stdout.contains("stale staging"), "\(broken.stdout)")
        #expect(broken.stdout.contains("2 problem(s) found"), "\(broken.stdout)")
        let repaired = try strata(store, ["check", "--repair"])
        #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
        #expect(repaired.stdout.contains("repaired:"), "\(repaired.stdout)")
        #expect(try strata(store, ["check"]).status == 0)
    }
}
