import ArgumentParser
import GraphDriver

/// `strata status`: the store and what the driver found about the host.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration.subcommand(
        "status", abstract: "Show what the driver found about this host.",
        example: "strata status --json")
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
        CommandOutput.fields(store + driver.status).write(json: json)
    }
}
