import ArgumentParser

/// `strata diff-size`: the bytes of a layer's changes.
struct DiffSize: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "diff-size", abstract: "Print the bytes of a layer's changes against its parent (or --parent ID, or --no-parent).",
        example: "strata diff-size app")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        let driver = try global.openDriver()
        CommandOutput.line("\(try driver.diffSize(id.id, parent: try against.parent(of: id.id, in: driver)))").write()
    }
}
