import ArgumentParser

/// `strata changes`: a layer's changes as `A`/`C`/`D` lines or a JSON array.
struct Changes: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "changes", abstract: "List a layer's changes against its parent (or --parent ID, or --no-parent): A (added), C (changed), D (deleted).",
        example: "strata changes app --json")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var against: ParentChoice
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        let driver = try global.openDriver()
        let changes = try driver.changes(id.id, parent: try against.parent(of: id.id, in: driver))
        let items: [JSONValue] = changes.map { .object([("kind", .string($0.kind.rawValue)), ("path", .string($0.path))]) }
        CommandOutput(text: changes.map { "\($0)\n" }.joined(), json: .array(items), layout: .oneMemberPerLine)
            .write(json: json)
    }
}
