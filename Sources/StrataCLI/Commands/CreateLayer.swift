import ArgumentParser
import GraphDriver
import Overlay

/// `strata create-layer`: a read-only layer, or a writable one with `--rw`.
struct CreateLayer: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "create-layer", abstract: "Create a layer (read-only, or writable with --rw).",
        example: "strata create-layer app --parent base --rw --size 10G")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The new layer's ID ([A-Za-z0-9][A-Za-z0-9_.-]*).") var id: LayerIDArgument
    @Option(help: "The layer to stack on.") var parent: LayerIDArgument?
    @Flag(help: "Create a writable (container) layer.") var rw = false
    @Option(help: "Limit a writable layer's size (10G, 512M, bytes).") var size: String?
    @Option(help: "Limit a writable layer's inode count.") var inodes: UInt64?
    @Option(help: "Copy this layer's contents into the new one.") var template: LayerIDArgument?
    @Option(help: "A container:host:size uid mapping; repeatable.") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping; repeatable.") var gidmap: [IDMapArgument] = []

    func run() throws {
        let driver = try global.openDriver()
        let wanted = IDMappings(uidmap: uidmap, gidmap: gidmap)
        try wanted.validate()
        // The layer starts out owned as its parent is; when the mappings differ it is then
        // shifted to the ones asked for (as containers/storage does).
        let parentMappings = try parent.map { (parent) throws(StorageError) in try driver.idMappings(of: parent.id) } ?? wanted
        var options = CreateOptions(idMappings: parentMappings)
        if let size { options.quota.size = try QuotaLimits.parseSize(size) }
        if let inodes { options.quota.inodes = inodes }
        if !options.quota.isEmpty && !rw {
            throw StorageError(.invalidArgument, "create layer \(id.id)", reason: "--size and --inodes apply to writable layers (--rw)")
        }
        if let template {
            try driver.createFromTemplate(id.id, template: template.id, parent: parent?.id, options: options, readWrite: rw)
        } else if rw {
            try driver.createReadWrite(id.id, parent: parent?.id, options: options)
        } else {
            try driver.create(id.id, parent: parent?.id, options: options)
        }
        if parentMappings != wanted {
            do throws(StorageError) {
                try driver.updateLayerIDMap(id.id, toContainer: parentMappings, toHost: wanted, mountLabel: nil)
            } catch {
                // Nothing half-made stays behind.
                try? driver.remove(id.id)
                throw error
            }
        }
    }
}
