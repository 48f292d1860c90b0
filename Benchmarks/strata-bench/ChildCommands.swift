import ArgumentParser
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The Strata side of `apply`, run by `strata-bench run` in a child process so that its wall time
/// and peak RSS are measured the way tar's are.
struct ApplyChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-child", abstract: "Apply one archive with LayerApplier (used by `run`).",
        shouldDisplay: false)

    @Option var archive: String
    @Option var layer: String
    @Option(help: "Writer threads (ApplyOptions.writerThreads).") var writerThreads: Int?

    func run() throws {
        var options = ApplyOptions()
        if let writerThreads { options.writerThreads = writerThreads }
        _ = try LayerApplier.apply(archive: FilePath(archive), into: FilePath(layer), options: options)
    }
}

/// The Strata side of `export`, run in a child process.
struct ExportChildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-child", abstract: "Export one layer with LayerExporter (used by `run`).",
        shouldDisplay: false)

    @Option var layer: String
    @Option var output: String

    func run() throws {
        let out = try FileDescriptor.currentWorkingDirectory.open(
            at: FilePath(output), .writeOnly, options: [.create, .truncate], permissions: .init(rawValue: 0o644))
        defer { out.closeQuietly() }
        _ = try LayerExporter.export(layer: FilePath(layer), lowers: [], to: out, options: ExportOptions())
    }
}
