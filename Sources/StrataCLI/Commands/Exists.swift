import ArgumentParser

/// `strata exists`: answers by its exit status alone.
struct Exists: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "exists", abstract: "Exit 0 when the layer exists, 1 when it does not.",
        example: "strata exists base && echo present")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        guard try global.openDriver().exists(id.id) else { throw ExitCode(1) }
    }
}
