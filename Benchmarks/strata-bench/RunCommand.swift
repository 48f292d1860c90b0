import ArgumentParser
import Foundation
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OperationKind: ExpressibleByArgument {}

/// `strata-bench run`: makes missing fixtures, then times every operation on every fixture.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Time apply and export, GNU tar against Strata (the default subcommand).")

    @OptionGroup var work: WorkDirectoryOptions

    @Option(help: "Timed runs per fixture, operation and side; the median is reported.")
    var runs: Int = 3

    @Option(name: .customLong("fixture"), parsing: .upToNextOption,
            help: "Fixtures to use (\(Fixture.allCases.map(\.rawValue).joined(separator: ", "))).")
    var fixtures: [Fixture] = Fixture.allCases

    @Option(name: .customLong("operation"), parsing: .upToNextOption,
            help: "Operations to time (\(OperationKind.allCases.map(\.rawValue).joined(separator: ", "))).")
    var operations: [OperationKind] = OperationKind.allCases

    @Option(name: .customLong("side"), parsing: .upToNextOption, help: "Sides to time (tar, strata).")
    var sideNames: [String] = ["tar", "strata"]

    @Flag(help: "Drop the page, dentry and inode caches before each timed run (cold); otherwise the archive is read once first (warm).")
    var dropCaches = false

    @Option(help: "Writer threads for Strata's apply (ApplyOptions.writerThreads; default: its own default).")
    var writerThreads: Int?

    @Flag(help: "Print every timed run.")
    var verbose = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard geteuid() == 0 else { throw ValidationError("strata-bench needs root (loop mounts, mkfs, chown)") }
    }

    func run() throws {
        try work.withPrepared { workDirectory, log in
            try runPrepared(workDirectory: workDirectory, log: log)
        }
    }

    private func runPrepared(workDirectory: String, log: @escaping (String) -> Void) throws {
        try Shell.ensureCommand(Shell.gnuTime, package: "time", log: log)
        for fixture in fixtures { try fixture.make(in: workDirectory, log: log) }

        var context = BenchContext(workDirectory: workDirectory, strataExecutable: Shell.selfExecutable(), log: log)
        if let writerThreads { context.strataApplyArguments = ["--writer-threads", String(writerThreads)] }
        let cacheNote = dropCaches
            ? "caches dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each timed run: cold"
            : "caches not dropped; the archive is read once before each timed run: warm"
        Shell.emit("strata-bench: \(runs) run(s) per cell, median wall time of the child process; \(cacheNote)")
        Shell.emit("each timed run on a fresh loop-mounted ext4 (apply) or on one per fixture (export); writeback not included")
        Shell.emit("peak RSS: the child's ru_maxrss from wait4, through GNU time (max over the runs)")
        Shell.emit("tar:    tar -xpf F --xattrs --xattrs-include='*' --numeric-owner -C DIR | tar -c --xattrs --numeric-owner --format=pax -f FILE -C DIR .")
        Shell.emit("strata: LayerApplier.apply(from:into:options:) | LayerExporter.export(layer:lowers:to:options:), each in a child process")
        Shell.emit("")

        var rows: [ResultRow] = []
        for fixture in fixtures {
            for kind in operations {
                let operation = kind.make()
                let sides = operation.sides.filter { sideNames.contains($0.name) }
                try operation.prepare(fixture, context)
                defer { operation.finish(fixture, context) }
                var samples: [Side: [ChildUsage]] = [:]
                var summaries: [Side: String] = [:]
                var failures: [Side: String] = [:]
                for run in 1...runs {
                    for side in sides where failures[side] == nil {
                        let trial = try operation.trial(side, fixture, run: run, context)
                        if !dropCaches { Shell.warm(fixture.archive(in: workDirectory)) }
                        try Shell.settle(dropCaches: dropCaches)
                        let usage = try Shell.measureWithPeakRSS(
                            trial.arguments, stdoutTo: nil,
                            scratchFile: ScratchFileSystem.scratchDirectory(workDirectory) + "/rusage.txt")
                        let summary = try trial.finish()
                        if usage.status != 0 {
                            failures[side] = "exit status \(usage.status)"
                            continue
                        }
                        samples[side, default: []].append(usage)
                        summaries[side] = summary
                        if verbose {
                            let seconds = String(format: "%.3f", usage.seconds)
                            Shell.emit("  \(fixture.rawValue) \(operation.name) \(side.name) run \(run): \(seconds) s, "
                                  + "peak RSS \(formatBytes(usage.peakResidentBytes)) (\(summary))")
                        }
                    }
                }
                if operation.comparesOutputs, Set(summaries.values).count > 1 {
                    for (side, summary) in summaries.sorted(by: { $0.key.name < $1.key.name }) {
                        Shell.emit("  warning: \(fixture.rawValue) \(operation.name): \(side.name) produced \(summary)")
                    }
                }
                rows.append(ResultRow(fixture: fixture.rawValue, operation: operation.name,
                                      tar: samples[.tar], strata: samples[.strata],
                                      tarFailure: failures[.tar], strataFailure: failures[.strata]))
            }
        }
        Shell.emit(ResultRow.table(rows))
    }
}

/// One line of the result table.
struct ResultRow {
    var fixture: String
    var operation: String
    var tar: [ChildUsage]?
    var strata: [ChildUsage]?
    var tarFailure: String?
    var strataFailure: String?

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    var tarMedian: Double? { tar.map { Self.median($0.map(\.seconds)) } }
    var strataMedian: Double? { strata.map { Self.median($0.map(\.seconds)) } }

    static func table(_ rows: [ResultRow]) -> String {
        let header = ["fixture", "operation", "tar median", "strata median", "ratio", "tar peak RSS", "strata peak RSS"]
        var lines: [[String]] = [header]
        for row in rows {
            let tarTime = row.tarFailure ?? row.tarMedian.map { String(format: "%.3f s", $0) } ?? "-"
            let strataTime = row.strataFailure ?? row.strataMedian.map { String(format: "%.3f s", $0) } ?? "-"
            var ratio = "-"
            if let t = row.tarMedian, let s = row.strataMedian, t > 0 { ratio = String(format: "%.2fx", s / t) }
            let tarRSS = row.tar.map { formatBytes($0.map(\.peakResidentBytes).max() ?? 0) } ?? "-"
            let strataRSS = row.strata.map { formatBytes($0.map(\.peakResidentBytes).max() ?? 0) } ?? "-"
            lines.append([row.fixture, row.operation, tarTime, strataTime, ratio, tarRSS, strataRSS])
        }
        let widths = (0..<header.count).map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { line in
            line.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column < 2 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

func formatBytes(_ bytes: Int64) -> String {
    String(format: "%.1f MiB", Double(bytes) / 1_048_576)
}
