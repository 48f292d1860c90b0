import GraphDriver
import StrataSystem
import SystemPackage

/// Where the store lives and how its driver is set up, from `storage.conf` and the command line.
struct StoreSettings {
    var root: String
    var runRoot: String
    /// Driver options as `key=value`: one value for each single-valued key, then the stores.
    var options: [String]
    /// What the configuration held that Strata does not use, one line each (without the
    /// `strata: warning: ` prefix): printed before the command runs.
    var warnings: [String] = []

    /// Reads `paths` in order, each later file's keys replacing the same keys of the earlier
    /// ones (drop-ins over the main file), and layers the result over `defaults`.
    ///
    /// `environment` and `userID` expand `$VAR` and `$UID` in paths, as containers/storage does;
    /// a user other than root uses `rootless_storage_path` for the root when it is set.
    static func load(paths: [String], defaults: StoreSettings, environment: [String: String],
                     userID: UInt32) throws(StorageError) -> StoreSettings {
        var collected = Collected()
        for path in paths {
            let file = try ConfigFile(path: path, bytes: try read(path))
            collected.fileIndex += 1
            try collected.walk(file.root, at: [], in: file)
        }
        var settings = defaults
        try settings.apply(collected, environment: environment, userID: userID)
        return settings
    }

    /// Adds the command line's driver options: a single-valued key given there replaces the
    /// configuration's, so the command line wins; stores add to the configuration's.
    mutating func applyCommandLine(_ commandLine: [String]) {
        let given = Set(commandLine.compactMap(Self.optionKey))
        let additive: Set<String> = ["additionalimagestore", "additionallayerstore"]
        options.removeAll { option in
            guard let key = Self.optionKey(option) else { return false }
            return given.contains(key) && !additive.contains(key)
        }
        options += commandLine
    }

    private static func optionKey(_ option: String) -> String? {
        guard var key = try? DriverOptions.split(option).key else { return nil }
        for prefix in ["overlay2.", "overlay."] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
        return key
    }

    private static func read(_ path: String) throws(StorageError) -> [UInt8] {
        do throws(Errno) {
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
            defer { fd.closeQuietly() }
            return try fd.readToEnd()
        } catch {
            throw StorageError("read configuration", path: path, errno: error)
        }
    }

    /// One key's value and the file it came from.
    fileprivate struct Setting {
        var file: ConfigFile
        /// Which of the files read it came from (for the order of warnings).
        var fileIndex: Int
        var key: [String]
        var value: ConfigFile.Value

        var dotted: String { key.joined(separator: ".") }
        var location: String { file.location(of: key) }
        func error(_ reason: String) -> StorageError { file.error(key, reason) }
    }

    /// The keys of all files read, later files replacing earlier ones key by key.
    fileprivate struct Collected {
        var used: [[String]: Setting] = [:]
        var unsupported: [[String]: Setting] = [:]
        var unknown: [[String]: Setting] = [:]
        var fileIndex = 0

        mutating func walk(_ table: [String: ConfigFile.Value], at path: [String], in file: ConfigFile) throws(StorageError) {
            for (name, value) in table {
                let key = path + [name]
                let setting = Setting(file: file, fileIndex: fileIndex, key: key, value: value)
                switch StorageConfKeys.role(of: key) {
                case .table:
                    guard case .table(let inner) = value else {
                        throw file.error(key, "must be a table, not \(value.kind)")
                    }
                    try walk(inner, at: key, in: file)
                case .otherDriverTable:
                    if case .table(let inner) = value {
                        for (innerName, innerValue) in inner {
                            unsupported[key + [innerName]] = Setting(file: file, fileIndex: fileIndex, key: key + [innerName], value: innerValue)
                        }
                    } else {
                        unsupported[key] = setting
                    }
                case .used: used[key] = setting
                case .unsupported: unsupported[key] = setting
                case .unknown: unknown[key] = setting
                }
            }
        }
    }

    private mutating func apply(_ collected: Collected, environment: [String: String], userID: UInt32) throws(StorageError) {
        func setting(_ key: String...) -> Setting? { collected.used[key] }
        func path(_ key: String...) throws(StorageError) -> String? {
            guard let s = collected.used[key] else { return nil }
            let value = try Self.string(s)
            return value.isEmpty ? nil : Self.expand(value, environment: environment, userID: userID)
        }

        if let s = setting("storage", "driver") {
            let driver = try Self.string(s)
            guard ["overlay", "overlay2", ""].contains(driver) else {
                throw s.error("driver '\(driver)' is not one Strata provides (overlay)")
            }
        }
        // containers/storage's graphroot holds overlay/ below it, as Strata's root does.
        if let graphRoot = try path("storage", "graphroot") { root = graphRoot }
        if let rootless = try path("storage", "rootless_storage_path"), userID != 0 { root = rootless }
        if let runRoot = try path("storage", "runroot") { self.runRoot = runRoot }

        var single: [String] = []
        for name in StorageConfKeys.overlayOptions {
            // [storage.options.overlay] wins over [storage.options], whatever file each came from.
            guard let s = setting("storage", "options", "overlay", name) ?? setting("storage", "options", name) else { continue }
            let option = "\(name)=\(try Self.optionValue(s, name))"
            do throws(StorageError) {
                _ = try DriverOptions(parsing: [option])
            } catch {
                throw s.error(error.reason)
            }
            single.append(option)
        }
        if let store = try path("storage", "imagestore") { single.append("imagestore=\(store)") }
        var stores: [String] = []
        for (key, option) in [("additionalimagestores", "additionalimagestore"), ("additionallayerstores", "additionallayerstore")] {
            guard let s = setting("storage", "options", key) else { continue }
            for store in try Self.strings(s) {
                do throws(StorageError) {
                    _ = try DriverOptions(parsing: ["\(option)=\(store)"])
                } catch {
                    throw s.error(error.reason)
                }
                stores.append("\(option)=\(store)")
            }
        }
        options = single + stores + options

        if !collected.unsupported.isEmpty {
            warnings.append("not used by Strata, ignored: " + Self.list(collected.unsupported))
        }
        if !collected.unknown.isEmpty {
            warnings.append("unknown keys, ignored: " + Self.list(collected.unknown))
        }
    }

    private static func list(_ settings: [[String]: Setting]) -> String {
        settings.values.sorted {
            ($0.fileIndex, $0.file.line(of: $0.key) ?? 0, $0.dotted) < ($1.fileIndex, $1.file.line(of: $1.key) ?? 0, $1.dotted)
        }.map { "\($0.dotted) (\($0.location))" }.joined(separator: ", ")
    }

    private static func string(_ s: Setting) throws(StorageError) -> String {
        guard case .string(let value) = s.value else { throw s.error("must be a string, not \(s.value.kind)") }
        return value
    }

    private static func strings(_ s: Setting) throws(StorageError) -> [String] {
        guard case .array(let items) = s.value else { throw s.error("must be an array of strings, not \(s.value.kind)") }
        var result: [String] = []
        for (n, item) in items.enumerated() {
            guard case .string(let value) = item else {
                throw s.error("must be an array of strings; item \(n + 1) is \(item.kind)")
            }
            result.append(value)
        }
        return result
    }

    /// A driver option's value as `--storage-opt` spells it. containers/storage wants strings;
    /// the plain TOML types are taken too: integers for sizes, inode counts and (octal) masks,
    /// booleans for flags.
    private static func optionValue(_ s: Setting, _ name: String) throws(StorageError) -> String {
        switch (s.value, name) {
        case (.string(let value), _): return value
        case (.integer(let n), "size"), (.integer(let n), "inodes"): return String(n)
        case (.integer(let n), "force_mask"): return String(n, radix: 8)
        case (.bool(let b), "skip_mount_home"), (.bool(let b), "ignore_chown_errors"): return b ? "true" : "false"
        default:
            let also = switch name {
            case "size", "inodes": " or an integer"
            case "force_mask": " or an integer (the mode)"
            case "skip_mount_home", "ignore_chown_errors": " or a boolean"
            default: ""
            }
            throw s.error("must be a string\(also), not \(s.value.kind)")
        }
    }

    /// `$UID` (the user's ID), `$NAME` and `${NAME}` from the environment (empty when unset), as
    /// containers/storage expands its paths.
    static func expand(_ text: String, environment: [String: String], userID: UInt32) -> String {
        let chars = Array(text)
        var result = ""
        var i = 0
        func isName(_ c: Character) -> Bool { c == "_" || c.isASCII && (c.isLetter || c.isNumber) }
        while i < chars.count {
            guard chars[i] == "$", i + 1 < chars.count else { result.append(chars[i]); i += 1; continue }
            if chars[i + 1] == "{", let close = chars[(i + 2)...].firstIndex(of: "}") {
                result += environment[String(chars[(i + 2)..<close])] ?? ""
                i = close + 1
            } else if isName(chars[i + 1]) {
                var end = i + 1
                while end < chars.count, isName(chars[end]) { end += 1 }
                let name = String(chars[(i + 1)..<end])
                result += name == "UID" ? String(userID) : environment[name] ?? ""
                i = end
            } else {
                result.append(chars[i])
                i += 1
            }
        }
        return result
    }
}
