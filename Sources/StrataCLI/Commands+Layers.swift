import ArgumentParser
import GraphDriver
import Overlay

struct CreateLayer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-layer",
        abstract: "Create a layer (read-only, or writable with --rw).",
        discussion: "Example: strata create-layer app --parent base --rw --size 10G")

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
        let wanted = IDMappings(uidMap: uidmap.map(\.map), gidMap: gidmap.map(\.map))
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

struct Remap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remap",
        abstract: "Shift a layer's file owners from the ID mapping it has to new ones.",
        discussion: """
            Owners, setuid/setgid bits, file capabilities (v3 root IDs), POSIX ACL entries and \
            override_stat records are rewritten. The layer's own files are shifted in place; for \
            a layer with parents, its parents' owners are copied once (metadata only, where the \
            kernel has metacopy) into a lower directory diff1 below its own, so that its changes \
            and diff stay its own. Files are shifted from the mapping the layer records. All or nothing: \
            a failed remap puts the layer back, and one cut short by a crash is rolled back from \
            its undo journal by strata cleanup (or check --repair).
            Example: strata remap app --uidmap 0:100000:65536 --gidmap 0:100000:65536
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Option(help: "A container:host:size uid mapping; repeatable (none: the identity).") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping; repeatable (none: the identity).") var gidmap: [IDMapArgument] = []

    func run() throws {
        let driver = try global.openDriver()
        let wanted = IDMappings(uidMap: uidmap.map(\.map), gidMap: gidmap.map(\.map))
        try wanted.validate()
        let current = try driver.idMappings(of: id.id)
        try driver.updateLayerIDMap(id.id, toContainer: current, toHost: wanted, mountLabel: nil)
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a layer (unmounting it first); removing a missing layer succeeds.",
        discussion: "Example: strata remove app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        try global.openDriver().remove(id.id)
    }
}

struct Exists: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exists",
        abstract: "Exit 0 when the layer exists, 1 when it does not.",
        discussion: "Example: strata exists base && echo present")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument

    func run() throws {
        guard try global.openDriver().exists(id.id) else { throw ExitCode(1) }
    }
}

struct Layers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layers",
        abstract: "List the layers in the store, one ID a line.",
        discussion: "Example: strata layers --json")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON array.") var json = false

    func run() throws {
        let ids = try global.openDriver().listLayers().sorted()
        if json {
            writeOutput("[" + ids.map { jsonString($0.rawValue) }.joined(separator: ", ") + "]\n")
        } else {
            writeOutput(ids.map { "\($0.rawValue)\n" }.joined())
        }
    }
}

struct Metadata: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Show where a layer's directories are (WorkDir, MergedDir, UpperDir, LowerDir).",
        discussion: "Example: strata metadata app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON object.") var json = false

    func run() throws {
        writeOutput(render(try global.openDriver().metadata(of: id.id), json: json))
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the driver found about this host.",
        discussion: "Example: strata status --json")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print a JSON object.") var json = false

    func run() throws {
        // What the store is, as containers-storage's status prints it, then the driver's findings.
        let settings = try global.resolvedSettings()
        let driver = try global.openDriver(settings)
        let store = [
            DriverStatusItem("Root", settings.root), DriverStatusItem("Run Root", settings.runRoot),
            DriverStatusItem("Driver Name", driver.name),
            DriverStatusItem("Driver Options", "[" + settings.options.joined(separator: " ") + "]"),
        ]
        writeOutput(render(store + driver.status, json: json))
    }
}

struct Usage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "Show the bytes and inodes a writable layer holds.",
        discussion: "Example: strata usage app")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Flag(help: "Print a JSON object.") var json = false

    func run() throws {
        let usage = try global.openDriver().readWriteDiskUsage(id.id)
        if json {
            writeOutput("{\"bytes\": \(usage.bytes), \"inodes\": \(usage.inodes)}\n")
        } else {
            writeOutput("Bytes: \(usage.bytes)\nInodes: \(usage.inodes)\n")
        }
    }
}

struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Unmount what the driver left mounted and remove stale staging directories.",
        discussion: """
            Also removes what crashed operations left in layer directories and rolls back remaps \
            a crash cut short (from their undo journals).
            Example: strata cleanup
            """)
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try global.openDriver().cleanup()
    }
}
