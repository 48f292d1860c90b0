import ArgumentParser
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// `strata diff`: a layer's changes as a tar stream, to a file or a pipe (never a terminal).
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "diff", abstract: "Write a layer's changes against its parent (or --parent ID, or --no-parent) as a tar stream.",
        example: "strata diff app -o app.tar")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    func run() throws {
        let driver = try global.openDriver()
        let out: FileDescriptor
        if let output {
            do throws(Errno) {
                out = try FileDescriptor.currentWorkingDirectory.open(
                    at: FilePath(output), .writeOnly, options: [.create, .truncate], permissions: .init(rawValue: 0o644))
            } catch {
                throw StorageError("open output", path: output, errno: error)
            }
        } else {
            if isatty(1) != 0 {
                throw StorageError(.invalidArgument, "diff \(id.id)", reason: "standard output is a terminal; use -o FILE or a pipe")
            }
            out = FileDescriptor.standardOutput
        }
        defer { if output != nil { out.closeQuietly() } }
        _ = try driver.diff(id.id, parent: try against.parent(of: id.id, in: driver), to: out, options: DiffOptions())
    }
}
