import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One competitor in a comparison: GNU tar and Strata (`run`), Strata and containers-storage
/// (`compare`).
struct Side: Hashable, CustomStringConvertible {
    let name: String
    var description: String { name }

    static let tar = Side(name: "tar")
    static let strata = Side(name: "strata")
}

/// The command for one timed run, and the untimed work that undoes its effects.
struct Trial {
    /// The child process to time (its wall time and peak RSS are the measurement).
    var arguments: [String]
    /// Checks the run's result and removes it; returns a one-line summary of what was produced
    /// (compared across sides to catch a side that did less work).
    var finish: () throws -> String
}

/// What a timed operation needs from the run.
struct BenchContext {
    var workDirectory: String
    var strataExecutable: String
    /// Extra arguments for Strata's child processes (`--writer-threads N`…).
    var strataApplyArguments: [String] = []
    var log: (String) -> Void
}

/// A benchmarked operation: for each fixture, an untimed `prepare`, then for each run and side a
/// `trial` whose child process is timed, then `finish`. A new `run` operation is a new conforming
/// type listed in `OperationKind`; comparisons of CLI commands with containers-storage are
/// `CompareCase`s (CompareCases.swift).
protocol BenchOperation: AnyObject {
    var name: String { get }
    var sides: [Side] { get }
    /// Whether every side must produce the same summary (the same tree); a mismatch is reported.
    var comparesOutputs: Bool { get }
    func prepare(_ fixture: Fixture, _ context: BenchContext) throws
    func trial(_ side: Side, _ fixture: Fixture, run: Int, _ context: BenchContext) throws -> Trial
    func finish(_ fixture: Fixture, _ context: BenchContext)
}

/// Counts what a tree holds, for a cheap cross-check between sides.
struct TreeSummary: CustomStringConvertible {
    var entries = 0
    var bytes: Int64 = 0

    init(_ path: String) throws {
        let root = try FileDescriptor.openDirectory(FilePath(path))
        defer { root.closeQuietly() }
        try walk(root)
    }

    private mutating func walk(_ dir: FileDescriptor) throws {
        for entry in try dir.directoryEntries() {
            entries += 1
            let status = try dir.status(at: FilePath(entry.name))
            if status.kind == .regular { bytes += status.size }
            if status.kind == .directory {
                let child = try dir.openDirectory(at: FilePath(entry.name))
                defer { child.closeQuietly() }
                try walk(child)
            }
        }
    }

    var description: String { "\(entries) entries, \(bytes) bytes" }
}

/// Applying a layer tar into an empty layer directory on a fresh filesystem.
final class ApplyOperation: BenchOperation {
    let name = "apply"
    let sides: [Side] = [.tar, .strata]
    let comparesOutputs = true
    private var scratch: ScratchFileSystem?

    func prepare(_ fixture: Fixture, _ context: BenchContext) throws {}

    func trial(_ side: Side, _ fixture: Fixture, run: Int, _ context: BenchContext) throws -> Trial {
        let fs = try ScratchFileSystem(workDirectory: context.workDirectory, name: "apply-\(side)-\(run)",
                                       size: fixture.scratchSize(in: context.workDirectory))
        scratch = fs
        let layer = fs.path("layer")
        mkdir(layer, 0o755)
        let archive = fixture.archive(in: context.workDirectory)
        let arguments: [String]
        switch side {
        case .tar:
            arguments = ["tar", "-xpf", archive, "--xattrs", "--xattrs-include=*", "--numeric-owner", "-C", layer]
        default:
            arguments = [context.strataExecutable, "apply-child", "--archive", archive, "--layer", layer]
                + context.strataApplyArguments
        }
        return Trial(arguments: arguments) { [weak self] in
            defer { fs.tearDown(); self?.scratch = nil }
            // Once per fixture, check Strata's tree against the archive with GNU tar's --compare
            // (contents, sizes, modes, owners, times, link targets); untimed.
            if side != .tar && run == 1 {
                let report = context.workDirectory + "/compare-\(fixture)-\(side).txt"
                let compare = try Shell.measure(["tar", "--compare", "--numeric-owner", "-f", archive, "-C", layer],
                                                stdoutTo: report)
                if compare.status == 0 {
                    unlink(report)
                    context.log("\(fixture) apply \(side): tar --compare finds no difference")
                } else {
                    context.log("warning: \(fixture) apply \(side): tar --compare finds differences, see \(report)")
                }
            }
            return try TreeSummary(layer).description
        }
    }

    func finish(_ fixture: Fixture, _ context: BenchContext) {
        scratch?.tearDown()
        scratch = nil
    }
}

/// Exporting a layer directory (the fixture, extracted once by tar) as a tar stream written to a
/// file on the same filesystem. (Not to /dev/null: GNU tar notices it and skips reading data.)
final class ExportOperation: BenchOperation {
    let name = "export"
    let sides: [Side] = [.tar, .strata]
    let comparesOutputs = false
    private var scratch: ScratchFileSystem?

    func prepare(_ fixture: Fixture, _ context: BenchContext) throws {
        let fs = try ScratchFileSystem(workDirectory: context.workDirectory, name: "export-\(fixture)",
                                       size: fixture.scratchSize(in: context.workDirectory))
        scratch = fs
        mkdir(fs.path("layer"), 0o755)
        context.log("extracting \(fixture.archiveName) for export (untimed)")
        try Shell.run(["tar", "-xpf", fixture.archive(in: context.workDirectory), "--xattrs", "--xattrs-include=*",
                       "--numeric-owner", "-C", fs.path("layer")])
    }

    func trial(_ side: Side, _ fixture: Fixture, run: Int, _ context: BenchContext) throws -> Trial {
        guard let fs = scratch else { throw BenchError("export: no prepared tree") }
        let layer = fs.path("layer")
        let output = fs.path("out-\(side).tar")
        let arguments: [String]
        switch side {
        case .tar:
            arguments = ["tar", "-c", "--xattrs", "--numeric-owner", "--format=pax", "-f", output, "-C", layer, "."]
        default:
            arguments = [context.strataExecutable, "export-child", "--layer", layer, "--output", output]
        }
        return Trial(arguments: arguments) {
            defer { unlink(output) }
            // Once per fixture, check Strata's stream against the tree (untimed): GNU tar's
            // --compare checks each entry's contents, mode, owner, time and link target, and the
            // listing must name as many entries as the tree holds.
            if side != .tar && run == 1 {
                try Self.verify(output: output, layer: layer, fixture: fixture, side: side, context)
            }
            return "\(Shell.fileSize(output)) bytes of tar"
        }
    }

    func finish(_ fixture: Fixture, _ context: BenchContext) {
        scratch?.tearDown()
        scratch = nil
    }

    private static func verify(output: String, layer: String, fixture: Fixture, side: Side,
                               _ context: BenchContext) throws {
        let report = context.workDirectory + "/compare-export-\(fixture)-\(side).txt"
        let compare = try Shell.measure(["tar", "--compare", "--numeric-owner", "-f", output, "-C", layer],
                                        stdoutTo: report)
        let listing = context.workDirectory + "/listing-export-\(fixture)-\(side).txt"
        defer { unlink(listing) }
        _ = try Shell.measure(["tar", "-tf", output], stdoutTo: listing)
        let names = Shell.readLines(listing).filter { $0 != "./" && $0 != "." }
        let tree = try TreeSummary(layer)
        if compare.status == 0 && names.count == tree.entries {
            unlink(report)
            context.log("\(fixture) export \(side): tar --compare finds no difference; \(names.count) entries, as in the tree")
        } else {
            context.log("warning: \(fixture) export \(side): tar --compare status \(compare.status) (see \(report)); "
                        + "\(names.count) entries in the stream, \(tree.entries) in the tree")
        }
    }
}

/// The operations `run --operation` can name.
enum OperationKind: String, CaseIterable {
    case apply, export

    func make() -> BenchOperation {
        switch self {
        case .apply: ApplyOperation()
        case .export: ExportOperation()
        }
    }
}
