import ArgumentParser
import GraphDriver

/// `--uidmap`/`--gidmap` values: `container:host:size`.
struct IDMapArgument: ExpressibleByArgument {
    let map: IDMap
    init?(argument: String) {
        guard let map = try? IDMap(parsing: argument) else { return nil }
        self.map = map
    }
}

/// A layer ID given on the command line.
struct LayerIDArgument: ExpressibleByArgument {
    let id: LayerID
    init?(argument: String) {
        guard let id = try? LayerID(argument) else { return nil }
        self.id = id
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

extension IDMappings {
    /// The mappings given as repeated `--uidmap` and `--gidmap` options.
    init(uidmap: [IDMapArgument], gidmap: [IDMapArgument]) {
        self.init(uidMap: uidmap.map(\.map), gidMap: gidmap.map(\.map))
    }
}

extension CommandConfiguration {
    /// A subcommand's configuration: its name, its one-line abstract, and a discussion that ends
    /// with `Example: <example>` (after `discussion`, when there is more to say).
    static func subcommand(_ name: String, abstract: String, discussion: String? = nil, example: String) -> CommandConfiguration {
        CommandConfiguration(commandName: name, abstract: abstract,
                             discussion: (discussion.map { $0 + "\n" } ?? "") + "Example: " + example)
    }
}
