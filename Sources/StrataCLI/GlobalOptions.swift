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

    @Option(name: .long, help: ArgumentHelp(
        "A containers-storage style storage.conf, or 'system' for the system's: $CONTAINERS_STORAGE_CONF, else the first of ~/.config/containers (users other than root), /etc/containers and /usr/share/containers, then their storage.conf.d drop-ins. Without --config: $CONTAINERS_STORAGE_CONF when set, else no file. Command-line options win.",
        valueName: "file|system"))
    public var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel: Logger.Level = .warning

    public init() {}

    /// The default home's parent.
    public static let defaultRoot = "/var/lib/strata"
    /// The default run home's parent.
    public static let defaultRunRoot = "/run/strata"

    /// Where the store is and its driver options: the defaults, then the configuration files
    /// (``ConfigSources``), then the command line. Warns on stderr about keys not used.
    func resolvedSettings() throws(StorageError) -> StoreSettings {
        let sources = ConfigSources.current
        var settings = try StoreSettings.load(
            paths: try sources.files(forConfigOption: config),
            defaults: StoreSettings(root: Self.defaultRoot, runRoot: Self.defaultRunRoot, options: []),
            environment: sources.environment, userID: sources.userID)
        if let root { settings.root = root }
        if let runRoot { settings.runRoot = runRoot }
        settings.applyCommandLine(storageOptions)
        if logLevel <= .warning {
            for warning in settings.warnings { writeError("strata: warning: \(warning)\n") }
        }
        return settings
    }

    /// Opens the overlay driver these options describe (`settings`, when already resolved).
    func openDriver(_ resolved: StoreSettings? = nil) throws(StorageError) -> OverlayDriver {
        let settings: StoreSettings
        if let resolved { settings = resolved } else { settings = try resolvedSettings() }
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
    /// The store root (`--root`, the home's parent) is made or kept searchable (0711, no listing):
    /// a user namespace's root must reach its layer's `merged` through it.
    private func makeHome(_ path: FilePath) throws(StorageError) {
        do throws(Errno) {
            let cwd = FileDescriptor.currentWorkingDirectory
            try cwd.makeDirectories(at: path, permissions: FilePermissions(rawValue: 0o711))
            let root = path.removingLastComponent()
            let st = try cwd.status(at: root)
            if st.userID.rawValue == geteuid(), st.permissions.rawValue & 0o011 != 0o011 {
                try cwd.changeMode(at: root, permissions: FilePermissions(rawValue: (st.permissions.rawValue & 0o7700) | 0o011))
            }
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
