import ArgumentParser

/// `strata metadata`: where a layer's directories are.
struct Metadata: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "metadata", abstract: "Show where a layer's directories are (WorkDir, MergedDir, UpperDir, LowerDir).",
        example: "strata metadata app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON object.") var json = false

    func run() throws {
        CommandOutput.fields(try global.openDriver().metadata(of: id.id)).write(json: json)
    }
}
