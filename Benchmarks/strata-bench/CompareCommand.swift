import ArgumentParser
import Foundation
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension CompareKind: ExpressibleByArgument {}

/// `strata-bench compare`: the `strata` CLI against containers-storage's CLI, operation by
/// operation, alternating sides, each run on a fresh loop-mounted ext4.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Time the strata CLI against containers-storage (overlay driver) on the same operations.")

    @OptionGroup var work: WorkDirectoryOptions

    @Option(help: "Timed runs per case and side; the median is reported.")
    var runs: Int = 3

    @Option(name: .customLong("case"), parsing: .upToNextOption,
            help: "Cases to run (\(CompareKind.allCases.map(\.rawValue).joined(separator: ", "))).")
    var cases: [CompareKind] = CompareKind.allCases

    @Option(name: .customLong("fixture"), parsing: .upToNextOption, help: "Fixtures for apply-diff.")
    var fixtures: [Fixture] = Fixture.allCases

    @Option(name: .customLong("shift-fixture"), parsing: .upToNextOption, help: "Fixtures for id-shift.")
    var shiftFixtures: [Fixture] = [.minbase]

    @Option(help: "The strata executable (default: `strata` next to this program, i.e. the same build).")
    var strata: String?

    @Flag(help: "Print every timed run.")
    var verbose = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard geteuid() == 0 else { throw ValidationError("strata-bench needs root (loop mounts, mkfs, overlay)") }
    }

    func run() throws {
        try work.withPrepared { workDirectory, log in
            try runPrepared(workDirectory: workDirectory, log: log)
        }
    }

    private func runPrepared(workDirectory: String, log: @escaping (String) -> Void) throws {
        guard Shell.hasCommand("containers-storage") else {
            throw BenchError("containers-storage is not installed (Debian package containers-storage)")
        }
        guard Shell.hasCommand("tar") else { throw BenchError("GNU tar is not installed") }
        try Shell.ensureCommand(Shell.gnuTime, package: "time", log: log)
        let strataExecutable = strata.map(Shell.absolute)
            ?? (FilePath(Shell.selfExecutable()).removingLastComponent().appending("strata").string)
        guard access(strataExecutable, X_OK) == 0 else {
            throw BenchError("no strata executable at \(strataExecutable) (build it: make build-release)")
        }
        var needed = Set(fixtures).union(shiftFixtures)
        if cases.contains(.layerOps) { needed.insert(.minbase) }
        for fixture in Fixture.allCases where needed.contains(fixture) { try fixture.make(in: workDirectory, log: log) }
        let context = BenchContext(workDirectory: workDirectory, strataExecutable: strataExecutable, log: log)

        var list: [CompareCase] = []
        for kind in cases {
            switch kind {
            case .apply: list += fixtures.map { ApplyDiffCase(fixture: $0) }
            case .layerOps: list.append(ChangedLayerCase())
            case .mount: list.append(MountDepthCase())
            case .idShift: list += shiftFixtures.map { IDShiftCase(fixture: $0) }
            }
        }

        Shell.emit("strata-bench compare: \(runs) run(s) per case, strata and containers-storage alternating, "
                   + "each run on a fresh loop-mounted ext4; median wall time of the CLI process")
        Shell.emit("strata: \(strataExecutable) --root R --run-root RR …")
        Shell.emit("c/s:    containers-storage (\(Self.containersStorageVersion())) with CONTAINERS_STORAGE_CONF "
                   + "(driver overlay, mountopt nodev)")
        Shell.emit("peak RSS: the process's ru_maxrss through GNU time (max over the runs); load average at start: \(Self.loadAverage())")
        Shell.emit("")

        let sides: [Side] = [.strata, .containersStorage]
        var table = CompareTable()
        for item in list {
            for run in 1...runs {
                for side in sides {
                    let name = "cmp-\(side == .strata ? "strata" : "cs")-\(run)"
                    let fs = try ScratchFileSystem(workDirectory: workDirectory, name: name, size: item.scratchSize(context))
                    let store = try BenchStore(side: side, fs: fs, strataExecutable: strataExecutable)
                    defer { store.tearDown() }
                    let steps: [CompareStep]
                    do {
                        steps = try item.prepare(store, context)
                    } catch {
                        log("\(item.name) \(side) run \(run): preparation failed: \(error)")
                        table.prepareFailed(item.name, side)
                        continue
                    }
                    var previousFailed = false
                    for step in steps {
                        if step.needsPreviousStep && previousFailed {
                            table.record(step.label, side, failure: "cannot")
                            continue
                        }
                        previousFailed = true
                        guard let arguments = step.arguments else {
                            table.record(step.label, side, failure: step.reason ?? "-")
                            continue
                        }
                        try Shell.settle(dropCaches: false)
                        let usage = try Shell.measureWithPeakRSS(
                            arguments, stdoutTo: step.standardOutput ?? "/dev/null",
                            scratchFile: ScratchFileSystem.scratchDirectory(workDirectory) + "/rusage.txt")
                        if usage.status != 0 {
                            table.record(step.label, side, failure: "cannot (exit \(usage.status))")
                            if verbose { Shell.emit("  \(step.label) \(side) run \(run): exit status \(usage.status)") }
                            continue
                        }
                        previousFailed = false
                        var summary = ""
                        do { summary = try step.summary?() ?? "" } catch { summary = "check failed: \(error)" }
                        table.record(step.label, side, usage: usage, summary: summary)
                        if verbose {
                            Shell.emit("  \(step.label) \(side) run \(run): \(String(format: "%.3f", usage.seconds)) s, "
                                       + "peak RSS \(formatBytes(usage.peakResidentBytes))"
                                       + (summary.isEmpty ? "" : " (\(summary))"))
                        }
                    }
                }
            }
        }
        for warning in table.mismatches() { Shell.emit("  warning: \(warning)") }
        Shell.emit("load average at end: \(Self.loadAverage())")
        Shell.emit("")
        Shell.emit(table.render())
    }

    static func loadAverage() -> String {
        Shell.readLines("/proc/loadavg").first.map { $0.split(separator: " ").prefix(3).joined(separator: " ") } ?? "?"
    }

    static func containersStorageVersion() -> String {
        // Its `version` command prints nothing in Debian's build; ask dpkg.
        let file = "/tmp/strata-bench-cs-version.txt"
        defer { unlink(file) }
        _ = try? Shell.measure(["dpkg-query", "-W", "-f", "${Version}", "containers-storage"], stdoutTo: file)
        return Shell.readLines(file).first.map { "Debian \($0)" } ?? "version unknown"
    }
}

/// Samples by row (in first-seen order) and side.
struct CompareTable {
    private var order: [String] = []
    private var samples: [String: [Side: [ChildUsage]]] = [:]
    private var failures: [String: [Side: String]] = [:]
    private var summaries: [String: [Side: String]] = [:]

    private mutating func note(_ row: String) { if !order.contains(row) { order.append(row) } }

    mutating func record(_ row: String, _ side: Side, usage: ChildUsage, summary: String) {
        note(row)
        samples[row, default: [:]][side, default: []].append(usage)
        summaries[row, default: [:]][side] = summary
    }

    mutating func record(_ row: String, _ side: Side, failure: String) {
        note(row)
        failures[row, default: [:]][side] = failure
    }

    mutating func prepareFailed(_ name: String, _ side: Side) {
        note(name)
        failures[name, default: [:]][side] = "preparation failed"
    }

    /// Rows where the two sides' summaries differ (one did less, or different, work).
    func mismatches() -> [String] {
        order.compactMap { row in
            guard let s = summaries[row], let a = s[.strata], let b = s[.containersStorage], a != b else { return nil }
            return "\(row): strata \(a); c/s \(b)"
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    static func time(_ seconds: Double) -> String {
        seconds < 1 ? String(format: "%.1f ms", seconds * 1000) : String(format: "%.2f s", seconds)
    }

    func render() -> String {
        let header = ["operation", "strata", "c/s", "ratio", "strata RSS", "c/s RSS", "RSS ratio"]
        var lines: [[String]] = [header]
        for row in order {
            let s = samples[row]?[.strata], c = samples[row]?[.containersStorage]
            let sTime = s.map { Self.median($0.map(\.seconds)) }
            let cTime = c.map { Self.median($0.map(\.seconds)) }
            let sRSS = s.map { $0.map(\.peakResidentBytes).max() ?? 0 }
            let cRSS = c.map { $0.map(\.peakResidentBytes).max() ?? 0 }
            var ratio = "-", rssRatio = "-"
            if let sTime, let cTime, cTime > 0 { ratio = String(format: "%.2f", sTime / cTime) }
            if let sRSS, let cRSS, cRSS > 0 { rssRatio = String(format: "%.2f", Double(sRSS) / Double(cRSS)) }
            lines.append([
                row,
                sTime.map(Self.time) ?? failures[row]?[.strata] ?? "-",
                cTime.map(Self.time) ?? failures[row]?[.containersStorage] ?? "-",
                ratio,
                sRSS.map(formatBytes) ?? "-",
                cRSS.map(formatBytes) ?? "-",
                rssRatio,
            ])
        }
        let widths = (0..<header.count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        var out: [String] = []
        for (index, line) in lines.enumerated() {
            var cells: [String] = []
            for (column, cell) in line.enumerated() {
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                cells.append(column == 0 ? cell + pad : pad + cell)
            }
            out.append("| " + cells.joined(separator: " | ") + " |")
            if index == 0 {
                var rule: [String] = []
                for (column, width) in widths.enumerated() {
                    rule.append(String(repeating: "-", count: width + 1) + (column == 0 ? "-" : ":"))
                }
                out.append("|" + rule.joined(separator: "|") + "|")
            }
        }
        return out.joined(separator: "\n")
    }
}
