import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Which `storage.conf` files a command reads.
///
/// - `--config FILE`: that file alone.
/// - `--config system`: the system's configuration, found as containers/storage documents it:
///   `$CONTAINERS_STORAGE_CONF` alone when it is set; otherwise one main file, the first that
///   exists of `$XDG_CONFIG_HOME/containers/storage.conf` (or `~/.config/…`; users other than
///   root only), `/etc/containers/storage.conf` and `/usr/share/containers/storage.conf`, then
///   the `*.conf` drop-ins of `/usr/share/containers/storage.conf.d`,
///   `/etc/containers/storage.conf.d` and (users other than root) the user's
///   `containers/storage.conf.d`, in the order of their names; a drop-in replaces one of the
///   same name in an earlier directory, and each file's keys replace the same keys before it.
/// - neither: `$CONTAINERS_STORAGE_CONF` when it is set, else no file (Strata's defaults).
///   A host's `/etc/containers/storage.conf` names Podman's store, so it is read only when asked.
struct ConfigSources {
    /// The `--config` value that asks for the system's configuration.
    static let systemKeyword = "system"
    /// The variable containers/storage reads its configuration file's path from.
    static let environmentVariable = "CONTAINERS_STORAGE_CONF"

    var environment: [String: String]
    var userID: UInt32
    /// The system's configuration directories, lowest precedence first.
    var systemDirectories: [String] = ["/usr/share/containers", "/etc/containers"]

    /// The sources for this process: its environment and effective user.
    static var current: ConfigSources {
        ConfigSources(environment: processEnvironment(), userID: effectiveUserID())
    }

    /// The files to read for `--config` (nil when not given), in order.
    func files(forConfigOption config: String?) throws(StorageError) -> [String] {
        switch config {
        case .some(Self.systemKeyword): return try systemFiles()
        case .some(let path): return [path]
        case .none: return environmentFile.map { [$0] } ?? []
        }
    }

    private var environmentFile: String? {
        environment[Self.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The user's `containers` configuration directory (users other than root only).
    private var userDirectory: String? {
        guard userID != 0 else { return nil }
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/containers" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/containers" }
        return nil
    }

    private func systemFiles() throws(StorageError) -> [String] {
        if let environmentFile { return [environmentFile] }
        let cwd = FileDescriptor.currentWorkingDirectory
        let mains = (userDirectory.map { [$0] } ?? []) + systemDirectories.reversed()
        var files = mains.map { $0 + "/storage.conf" }.first { cwd.exists(at: FilePath($0)) }.map { [$0] } ?? []
        var dropIns: [String: String] = [:]
        for directory in systemDirectories + (userDirectory.map { [$0] } ?? []) {
            for name in try dropInNames(in: directory + "/storage.conf.d") {
                dropIns[name] = directory + "/storage.conf.d/" + name
            }
        }
        files += dropIns.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.map { dropIns[$0]! }
        return files
    }

    /// The `*.conf` files (or links to files) of `directory`; none when it does not exist.
    private func dropInNames(in directory: String) throws(StorageError) -> [String] {
        do throws(Errno) {
            let fd = try FileDescriptor.openDirectory(FilePath(directory))
            defer { fd.closeQuietly() }
            let entries = try fd.directoryEntries()
            return entries.compactMap { entry -> String? in
                guard entry.name.hasSuffix(".conf"), !entry.name.hasPrefix(".") else { return nil }
                if entry.kind == .regular { return entry.name }
                guard entry.kind == .symlink || entry.kind == .unknown,
                      let status = try? fd.status(at: FilePath(entry.name), followSymlinks: true),
                      FileKind(mode: status.mode) == .regular || FileKind(mode: status.mode) == .characterDevice
                else { return nil }
                return entry.name
            }
        } catch .noSuchFileOrDirectory {
            return []
        } catch {
            throw StorageError("read configuration", path: directory, errno: error)
        }
    }

    /// This process's environment.
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            entry += 1
        }
        return result
    }

    /// The effective user ID.
    static func effectiveUserID() -> UInt32 { geteuid() }
}
