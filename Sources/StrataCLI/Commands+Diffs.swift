import ArgumentParser
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

struct ApplyDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply-diff",
        abstract: "Apply a layer tar stream (plain, gzip or zstd) to a layer and print the bytes applied.",
        discussion: """
            The stream holds changes against the layer's parent, or against the layer named by \
            --parent (or an empty tree, with --no-parent); a stream against another layer than \
            the parent is replayed through a mount.
            Example: strata apply-diff base rootfs.tar.gz
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Argument(help: "The tar file, or - for standard input.") var file: String = "-"
    @Option(help: "A container:host:size uid mapping for the stream's owners; repeatable.") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping for the stream's owners; repeatable.") var gidmap: [IDMapArgument] = []

    func run() throws {
        let driver = try global.openDriver()
        let input = try openInput(file)
        defer { if file != "-" { input.closeQuietly() } }
        let parent = try against.parent(of: id.id, in: driver)
        let options = ApplyDiffOptions(idMappings: IDMappings(uidMap: uidmap.map(\.map), gidMap: gidmap.map(\.map)))
        let size = try driver.applyDiff(id.id, parent: parent, from: input, options: options)
        writeOutput("\(size)\n")
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Write a layer's changes against its parent (or --parent ID, or --no-parent) as a tar stream.",
        discussion: "Example: strata diff app -o app.tar")
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

struct Changes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes",
        abstract: "List a layer's changes against its parent (or --parent ID, or --no-parent): A (added), C (changed), D (deleted).",
        discussion: "Example: strata changes app --json")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        let driver = try global.openDriver()
        let changes = try driver.changes(id.id, parent: try against.parent(of: id.id, in: driver))
        if json {
            let items = changes.map { "{\"kind\": \"\($0.kind.rawValue)\", \"path\": \(jsonString($0.path))}" }
            writeOutput("[" + items.joined(separator: ",\n ") + "]\n")
        } else {
            writeOutput(changes.map { "\($0)\n" }.joined())
        }
    }
}

struct DiffSize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff-size",
        abstract: "Print the bytes of a layer's changes against its parent (or --parent ID, or --no-parent).",
        discussion: "Example: strata diff-size app")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        let driver = try global.openDriver()
        writeOutput("\(try driver.diffSize(id.id, parent: try against.parent(of: id.id, in: driver)))\n")
    }
}

/// What `apply-diff`, `diff`, `changes` and `diff-size` take the changes to be against: the
/// layer's own parent unless `--parent ID` names another layer or `--no-parent` asks for none
/// (an empty tree).
struct ParentChoice: ParsableArguments {
    @Option(name: .customLong("parent"),
            help: ArgumentHelp("The layer the changes are against (default: the layer's own parent).", valueName: "id"))
    var parent: LayerIDArgument?

    @Flag(name: .customLong("no-parent"), help: "Against no layer: an empty tree, whatever the layer sits on.")
    var noParent = false

    func validate() throws {
        if parent != nil && noParent {
            throw ValidationError("--parent and --no-parent exclude each other")
        }
    }

    /// The parent to give the driver for layer `id`: `nil` for `--no-parent`.
    func parent(of id: LayerID, in driver: OverlayDriver) throws(StorageError) -> LayerID? {
        if noParent { return nil }
        if let parent { return parent.id }
        return try driver.parent(of: id)
    }
}

/// Opens a file for reading, or standard input for `-`.
func openInput(_ file: String) throws(StorageError) -> FileDescriptor {
    if file == "-" { return .standardInput }
    do throws(Errno) {
        return try FileDescriptor.currentWorkingDirectory.open(at: FilePath(file), .readOnly)
    } catch {
        throw StorageError("open layer archive", path: file, errno: error)
    }
}
