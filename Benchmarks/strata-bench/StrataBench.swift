import ArgumentParser

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
}
