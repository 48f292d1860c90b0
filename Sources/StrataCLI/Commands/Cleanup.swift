import ArgumentParser

/// `strata cleanup`: what crashed or interrupted operations left behind.
struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "cleanup", abstract: "Unmount what the driver left mounted and remove stale staging directories.",
        discussion: """
            Also removes what crashed operations left in layer directories and rolls back remaps \
            a crash cut short (from their undo journals).
            """,
        example: "strata cleanup")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.openDriver().cleanup()
    }
}
