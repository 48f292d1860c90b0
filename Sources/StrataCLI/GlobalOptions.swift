import ArgumentParser
import GraphDriver
import Logging
import IDShift
import Overlay
import ProjectQuota
import MountLabel
import StrataSystem
import SystemPackage

/// The options every `strata` command takes: where the store is and how the driver is set up.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp("The parent of the driver's home.", valueName: "dir"))
    public var root: String?

    @Option(name: .customLong("run-root"), help: ArgumentHelp("The parent of the driver's run home.", valueName: "dir"))
    public var runRoot: String?

    @Option(name: .customLong("storage-opt"),
            help: ArgumentHelp("A driver option (mountopt, size, inodes, force_mask, skip_mount_home, ignore_chown_errors, imagestore, additionalimagestore, additionallayerstore); repeatable.",
                               valueName: "key=value"))
    public var storageOptions: [String] = []

    @Option(name: .long, help: ArgumentHelp("A containers-storage style storage.conf.", valueName: "file"))
    public var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel: Logger.Level = .warning

    public init() {}

    /// The default home's parent.
    public static let defaultRoot = "/var/lib/strata"
    /// The default run home's parent.
    public static let defaultRunRoot = "/run/strata"

    /// Where the store is and its driver options: the defaults, then the configuration file
    /// (`--config` or the system's), then the command line.
    func resolvedSettings() throws(StorageError) -> StoreSettings {
        var settings = StoreSettings(root: Self.defaultRoot, runRoot: Self.defaultRunRoot, options: [])
        if let path = config ?? StoreSettings.systemConfigIfPresent() {
            settings = try StoreSettings.load(path: path, defaults: settings)
        }
        if let root { settings.root = root }
        if let runRoot { settings.runRoot = runRoot }
        settings.options += storageOptions
        return settings
    }

    /// Opens the overlay driver these options describe.
    func openDriver() throws(StorageError) -> OverlayDriver {
        let settings = try resolvedSettings()
        let driverOptions = try DriverOptions(parsing: settings.options)
        var logger = Logger(label: "strata")
        logger.logLevel = logLevel
        let home = FilePath(settings.root).appending("overlay")
        let runHome = FilePath(settings.runRoot).appending("overlay")
        let homePath = absolute(home)
        try makeHome(homePath)
        return try OverlayDriver(home: homePath, runHome: absolute(runHome), options: driverOptions,
                                 quota: ProjectQuotaControl.forHome(homePath), labeler: SELinuxLabeler(),
                                 shifter: LayerShifter(home: homePath), logger: logger)
    }

    /// Makes the home (and its parents) so the quota controller can look at its filesystem.
    private func makeHome(_ path: FilePath) throws(StorageError) {
        do throws(Errno) {
            try FileDescriptor.currentWorkingDirectory.makeDirectories(at: path)
        } catch {
            throw StorageError("create home", path: path.string, errno: error)
        }
    }

    private func absolute(_ path: FilePath) -> FilePath {
        if path.isAbsolute { return path }
        return FilePath(currentDirectory()).pushing(path)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// The current working directory.
func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return "/" }
    return String(cString: buffer)
}

#if canImport(Glibc)
import Glibc
#endif
