import ArgumentParser

/// `strata layers`: the store's layer IDs, sorted.
struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "layers", abstract: "List the layers in the store, one ID a line.",
        example: "strata layers --json")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        let ids = try global.openDriver().listLayers().sorted().map(\.rawValue)
        CommandOutput(text: ids.map { $0 + "\n" }.joined(), json: .array(ids.map { .string($0) }))
            .write(json: json)
    }
}
