import ArgumentParser
import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

/// The `strata` command: every driver operation, one subcommand each.
public struct Strata: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "A container-image storage driver for Linux overlayfs.",
        discussion: """
            Layers live under <root>/overlay (default \(GlobalOptions.defaultRoot)/overlay) in the \
            layout containers/storage uses; mounts are counted in <run-root>/overlay.
            """,
        subcommands: [
            Status.self, CreateLayer.self, ApplyDiff.self, Diff.self, Changes.self, DiffSize.self,
            Mount.self, Unmount.self, Exists.self, Layers.self, Metadata.self, Usage.self,
            Remap.self, Remove.self, Cleanup.self, Check.self, Import.self, CheckHost.self,
        ])

    /// The global options, accepted before the subcommand too (`strata --root /x layers`). The
    /// parser reads them for this command from the whole line; each subcommand's own
    /// `@OptionGroup` of the same type is then given these values, so the options stay defined
    /// once and also work after the subcommand.
    @OptionGroup(title: "Global options") var global: GlobalOptions

    public init() {}

    /// Parses the command line, runs the command, and turns a `StorageError` into one line on
    /// stderr (`strata: <what failed>: <path>: <reason>`) and exit status 1.
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Glibc.exit(0)
        } catch let error as StorageError {
            writeError("strata: \(error)\n")
            Glibc.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Writes text to standard error.
func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// Writes text to standard output, unbuffered.
func writeOutput(_ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { return }
        offset += n
    }
}

/// `--uidmap`/`--gidmap` values: `container:host:size`.
struct IDMapArgument: ExpressibleByArgument {
    let map: IDMap
    init?(argument: String) {
        guard let map = try? IDMap(parsing: argument) else { return nil }
        self.map = map
    }
}

/// A layer ID given on the command line.
struct LayerIDArgument: ExpressibleByArgument {
    let id: LayerID
    init?(argument: String) {
        guard let id = try? LayerID(argument) else { return nil }
        self.id = id
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// Renders key/value pairs as `Key: value` lines or a JSON object.
func render(_ items: [DriverStatusItem], json: Bool) -> String {
    if json {
        let body = items.map { "  \(jsonString($0.key)): \(jsonString($0.value))" }.joined(separator: ",\n")
        return "{\n\(body)\n}\n"
    }
    return items.map { "\($0.key): \($0.value)\n" }.joined()
}

/// A JSON string literal.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        default:
            if scalar.value < 0x20 {
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
