import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `strata-bench`: times Strata's layer apply and export against GNU tar on fixtures it makes
/// itself, each timed run on a fresh loop-mounted ext4 filesystem.
@main
struct StrataBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata-bench",
        abstract: "Time Strata's layer apply and export against GNU tar (run), and the strata CLI against containers-storage (compare).",
        subcommands: [RunCommand.self, CompareCommand.self, FixturesCommand.self, CleanCommand.self,
                      ApplyChildCommand.self, ExportChildCommand.self],
        defaultSubcommand: RunCommand.self)
}

/// Options every subcommand that touches the work directory shares.
struct WorkDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("work-dir"), help: "Where fixtures and scratch filesystems live.")
    var workDirectory: String = "./bench-work"

    /// Makes the work directory (absolute), clears what an interrupted run left in it, and runs
    /// `body` with it and a logger of `# message` lines on stderr; clears leftovers again after.
    func withPrepared<R>(_ body: (_ workDirectory: String, _ log: @escaping (String) -> Void) throws -> R) throws -> R {
        let directory = Shell.absolute(workDirectory)
        mkdir(directory, 0o755)
        ScratchFileSystem.removeLeftovers(workDirectory: directory)
        defer { ScratchFileSystem.removeLeftovers(workDirectory: directory) }
        return try body(directory) { message in
            var line = "# \(message)\n"
            _ = line.withUTF8 { write(2, $0.baseAddress, $0.count) }
        }
    }
}
