import GraphDriver
import StrataSystem
import SystemPackage

/// Where the store lives and how its driver is set up, from `storage.conf` and the command line.
struct StoreSettings {
    var root: String
    var runRoot: String
    /// Driver options as `key=value`, config file first so the command line wins.
    var options: [String]

    /// The system-wide configuration containers tools read.
    static let systemConfig = "/etc/containers/storage.conf"

    static func systemConfigIfPresent() -> String? {
        FileDescriptor.currentWorkingDirectory.exists(at: FilePath(systemConfig)) ? systemConfig : nil
    }

    /// Keys of containers-storage's storage.conf that do not concern an overlay driver run by
    /// Strata; they are accepted and ignored so that a host's existing file can be read.
    private static let ignored: Set<String> = [
        "storage.rootless_storage_path", "storage.transient_store", "storage.imagestore",
        "storage.options.pull_options", "storage.options.remap-uids", "storage.options.remap-gids",
        "storage.options.remap-user", "storage.options.remap-group", "storage.options.root-auto-userns-user",
        "storage.options.auto-userns-min-size", "storage.options.auto-userns-max-size",
        "storage.options.disable-volatile", "storage.options.overlay.use_composefs",
        "storage.options.overlay.convert_images",
    ]

    /// Reads `path`, layering it over `defaults`.
    static func load(path: String, defaults: StoreSettings) throws(StorageError) -> StoreSettings {
        let text: String
        do throws(Errno) {
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
            defer { fd.closeQuietly() }
            text = String(decoding: try fd.readToEnd(), as: UTF8.self)
        } catch {
            throw StorageError("read configuration", path: path, errno: error)
        }
        let file = try ConfigFile(path: path, text: text)
        var settings = defaults
        for entry in file.entries {
            let full = entry.table.isEmpty ? entry.key : entry.table + "." + entry.key
            if ignored.contains(full) || entry.table.hasPrefix("storage.options.") && !entry.table.hasPrefix("storage.options.overlay") {
                continue
            }
            func string() throws(StorageError) -> String {
                guard case .string(let s) = entry.value else { throw file.error(entry.line, entry.key, "must be a string") }
                return s
            }
            switch full {
            case "storage.driver":
                let driver = try string()
                guard driver == "overlay" || driver == "overlay2" || driver.isEmpty else {
                    throw file.error(entry.line, entry.key, "driver '\(driver)' is not one Strata provides (overlay)")
                }
            case "storage.graphroot":
                settings.root = try string()
                // containers-storage's graphroot holds overlay/ below it, as Strata's root does.
            case "storage.runroot":
                settings.runRoot = try string()
            case "storage.options.additionalimagestores":
                guard case .strings(let stores) = entry.value else {
                    throw file.error(entry.line, entry.key, "must be an array of paths")
                }
                for store in stores { settings.options.append("additionalimagestore=\(store)") }
            case "storage.options.mount_program", "storage.options.overlay.mount_program":
                throw file.error(entry.line, entry.key,
                                 "Strata mounts overlay in the kernel and does not run a mount program (fuse-overlayfs); remove this key")
            case "storage.options.size", "storage.options.overlay.size",
                 "storage.options.overlay.mountopt", "storage.options.overlay.inodes",
                 "storage.options.overlay.force_mask", "storage.options.overlay.skip_mount_home",
                 "storage.options.overlay.ignore_chown_errors":
                let value: String
                switch entry.value {
                case .string(let s): value = s
                case .bool(let b): value = b ? "true" : "false"
                case .integer(let n): value = String(n)
                case .strings: throw file.error(entry.line, entry.key, "must be a single value")
                }
                settings.options.append("\(entry.key)=\(value)")
                // Validate now, so the error names the file and line.
                do throws(StorageError) {
                    _ = try DriverOptions(parsing: ["\(entry.key)=\(value)"])
                } catch {
                    throw file.error(entry.line, entry.key, error.reason)
                }
            default:
                throw file.error(entry.line, entry.key, "unknown key '\(full)'")
            }
        }
        return settings
    }
}
