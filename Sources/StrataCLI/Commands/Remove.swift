import ArgumentParser

/// `strata remove`: removes a layer, unmounting it first.
struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "remove", abstract: "Remove a layer (unmounting it first); removing a missing layer succeeds.",
        example: "strata remove app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        try global.openDriver().remove(id.id)
    }
}
