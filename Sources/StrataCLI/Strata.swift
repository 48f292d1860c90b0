import ArgumentParser
import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

/// The `strata` command: every driver operation, one subcommand each.
public struct Strata: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "A container-image storage driver for Linux overlayfs.",
        discussion: """
            Layers live under <root>/overlay (default \(GlobalOptions.defaultRoot)/overlay) in the \
            layout containers/storage uses; mounts are counted in <run-root>/overlay.
            """,
        subcommands: [
            Status.self, CreateLayer.self, ApplyDiff.self, Diff.self, Changes.self, DiffSize.self,
            Mount.self, Unmount.self, Exists.self, Layers.self, Metadata.self, Usage.self,
            Remap.self, Remove.self, Cleanup.self, Check.self, Import.self, CheckHost.self,
        ])

    /// The global options, accepted before the subcommand too (`strata --root /x layers`). The
    /// parser reads them for this command from the whole line; each subcommand's own
    /// `@OptionGroup` of the same type is then given these values, so the options stay defined
    /// once and also work after the subcommand.
    @OptionGroup(title: "Global options") var global: GlobalOptions

    public init() {}

    /// Parses the command line, runs the command, and turns a `StorageError` into one line on
    /// stderr (`strata: <what failed>: <path>: <reason>`) and exit status 1.
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Glibc.exit(0)
        } catch let error as StorageError {
            writeError("strata: \(error)\n")
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
