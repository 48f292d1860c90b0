import ArgumentParser
import GraphDriver
import Overlay

/// `strata mount`: mounts a layer and prints its mount point.
struct Mount: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "mount", abstract: "Mount a layer over its parents and print the mount point; mounts are counted.",
        example: "strata mount app --option nodev")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The layer's ID.") var id: LayerIDArgument
    @Option(help: "The SELinux context to mount with.") var label: String?
    @Flag(help: "Mount read-only.") var ro = false
    @Flag(help: "Mount with volatile (no syncs to the upper layer).") var volatile = false
    @Option(help: "A container:host:size uid mapping to present; repeatable.") var uidmap: [IDMapArgument] = []
    @Option(help: "A container:host:size gid mapping to present; repeatable.") var gidmap: [IDMapArgument] = []
    @Option(name: .customLong("option"), help: "An extra mount option; repeatable.") var options: [String] = []

    func run() throws {
        let driver = try global.openDriver()
        var extra: [MountOption] = []
        for option in options { extra += try MountOption.parseList(option) }
        let mountOptions = MountOptions(
            label: try label.map { (text) throws(StorageError) in try SELinuxContext(text) },
            idMappings: IDMappings(uidmap: uidmap, gidmap: gidmap),
            readOnly: ro, volatile: volatile, extra: extra)
        let merged = try driver.get(id.id, options: mountOptions)
        CommandOutput.line(merged.string).write()
    }
}
