import ArgumentParser

/// `strata usage`: the bytes and inodes of a writable layer.
struct Usage: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "usage", abstract: "Show the bytes and inodes a writable layer holds.",
        example: "strata usage app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON object.") var json = false

    func run() throws {
        let usage = try global.openDriver().readWriteDiskUsage(id.id)
        CommandOutput(text: "Bytes: \(usage.bytes)\nInodes: \(usage.inodes)\n",
                      json: .object([("bytes", .integer(usage.bytes)), ("inodes", .integer(usage.inodes))]))
            .write(json: json)
    }
}
