import ArgumentParser

/// `strata unmount`: releases one counted mount.
struct Unmount: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "unmount", abstract: "Release one mount of a layer; the last release unmounts it.",
        example: "strata unmount app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        try global.openDriver().put(id.id)
    }
}
