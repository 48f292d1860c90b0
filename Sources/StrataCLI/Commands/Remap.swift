import ArgumentParser
import GraphDriver

/// `strata remap`: shifts a layer's owners to new ID mappings.
struct Remap: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "remap", abstract: "Shift a layer's file owners from the ID mapping it has to new ones.",
        discussion: """
            Owners, setuid/setgid bits, file capabilities (v3 root IDs), POSIX ACL entries and \
            override_stat records are rewritten. The layer's own files are shifted in place; for \
            a layer with parents, its parents' owners are copied once (metadata only, where the \
            kernel has metacopy) into a lower directory diff1 below its own, so that its changes \
            and diff stay its own. Files are shifted from the mapping the layer records. All or nothing: \
            a failed remap puts the layer back, and one cut short by a crash is rolled back from \
            its undo journal by strata cleanup (or check --repair).
            """,
        example: "strata remap app --uidmap 0:100000:65536 --gidmap 0:100000:65536")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Option(help: "A container:host:size uid mapping; repeatable (none: the identity).") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping; repeatable (none: the identity).") var gidmap: [IDMapArgument] = []

    func run() throws {
        let driver = try global.openDriver()
        let wanted = IDMappings(uidmap: uidmap, gidmap: gidmap)
        try wanted.validate()
        let current = try driver.idMappings(of: id.id)
        try driver.updateLayerIDMap(id.id, toContainer: current, toHost: wanted, mountLabel: nil)
    }
}
