import ArgumentParser
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage

/// `strata apply-diff`: applies a layer tar stream and prints the bytes applied.
struct ApplyDiff: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "apply-diff", abstract: "Apply a layer tar stream (plain, gzip or zstd) to a layer and print the bytes applied.",
        discussion: """
            The stream holds changes against the layer's parent, or against the layer named by \
            --parent (or an empty tree, with --no-parent); a stream against another layer than \
            the parent is replayed through a mount.
            """,
        example: "strata apply-diff base rootfs.tar.gz")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Argument(help: "The tar file, or - for standard input.") var file: String = "-"
    @Option(help: "A container:host:size uid mapping for the stream's owners; repeatable.") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping for the stream's owners; repeatable.") var gidmap: [IDMapArgument] = []

    func run() throws {
        let driver = try global.openDriver()
        let input = try Self.openInput(file)
        defer { if file != "-" { input.closeQuietly() } }
        let parent = try against.parent(of: id.id, in: driver)
        let options = ApplyDiffOptions(idMappings: IDMappings(uidmap: uidmap, gidmap: gidmap))
        let size = try driver.applyDiff(id.id, parent: parent, from: input, options: options)
        CommandOutput.line("\(size)").write()
    }

    /// Opens a file for reading, or standard input for `-`.
    private static func openInput(_ file: String) throws(StorageError) -> FileDescriptor {
        if file == "-" { return .standardInput }
        do throws(Errno) {
            return try FileDescriptor.currentWorkingDirectory.open(at: FilePath(file), .readOnly)
        } catch {
            throw StorageError("open layer archive", path: file, errno: error)
        }
    }
}
