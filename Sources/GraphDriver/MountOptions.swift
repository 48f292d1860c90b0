/// An SELinux context such as `system_u:object_r:container_file_t:s0:c1,c2`.
///
/// Validated to have at least user, role and type, and no characters that could break out of a
/// quoted mount option.
public struct SELinuxContext: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ text: String) throws(StorageError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts.prefix(3).allSatisfy({ !$0.isEmpty }),
              !text.contains(where: { $0 == "\"" || $0 == "\n" || $0 == "\0" || $0 == " " })
        else {
            throw StorageError(.invalidArgument, "parse SELinux context", reason:
                "'\(text)' is not user:role:type[:level] without quotes or spaces")
        }
        rawValue = text
    }

    public var description: String { rawValue }
}

/// One mount option, typed until the `mount(2)` boundary: a flag (`nodev`) or a key with a
/// value (`redirect_dir=off`).
public struct MountOption: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let value: String?

    private init(name: String, value: String?) {
        self.name = name
        self.value = value
    }

    /// A flag option such as `nodev`.
    public static func flag(_ name: String) throws(StorageError) -> MountOption {
        try validate(name, nil)
        return MountOption(name: name, value: nil)
    }

    /// A key with a value, such as `redirect_dir=off`.
    public static func value(_ name: String, _ value: String) throws(StorageError) -> MountOption {
        try validate(name, value)
        return MountOption(name: name, value: value)
    }

    /// A key whose value is written in double quotes, so that it may hold commas, as `mount(2)`
    /// data needs for `context="system_u:object_r:container_file_t:s0:c1,c2"`. The stored value
    /// keeps the quotes; the `fsconfig(2)` path passes it without them.
    public static func quoted(_ name: String, _ value: String) throws(StorageError) -> MountOption {
        guard !value.contains(where: { $0 == "\"" || $0 == "\0" || $0 == "\n" }) else {
            throw StorageError(.invalidArgument, "parse mount option", reason:
                "the value of '\(name)' cannot hold quotes, NUL or newlines")
        }
        let quotedValue = "\"" + value + "\""
        try validate(name, quotedValue)
        return MountOption(name: name, value: quotedValue)
    }

    /// Parses `name` or `name=value`.
    public init(parsing text: String) throws(StorageError) {
        if let eq = text.firstIndex(of: "=") {
            self = try .value(String(text[..<eq]), String(text[text.index(after: eq)...]))
        } else {
            self = try .flag(text)
        }
    }

    /// Parses a comma-separated list (`nodev,metacopy=on`).
    public static func parseList(_ text: String) throws(StorageError) -> [MountOption] {
        var result: [MountOption] = []
        for part in text.split(separator: ",") where !part.isEmpty {
            result.append(try MountOption(parsing: String(part)))
        }
        return result
    }

    private static func validate(_ name: String, _ value: String?) throws(StorageError) {
        let bad: (Character) -> Bool = { $0 == "," || $0 == "\0" || $0 == "\n" }
        // A value in double quotes (and no quote inside) may hold commas.
        let isQuoted = value.map { $0.count >= 2 && $0.hasPrefix("\"") && $0.hasSuffix("\"")
            && !$0.dropFirst().dropLast().contains("\"") } ?? false
        let valueIsBad = isQuoted
            ? (value ?? "").contains(where: { $0 == "\0" || $0 == "\n" })
            : (value ?? "").contains(where: bad)
        guard !name.isEmpty, !name.contains(where: { bad($0) || $0 == "=" }), !valueIsBad
        else {
            throw StorageError(.invalidArgument, "parse mount option", reason:
                "'\(name)\(value.map { "=" + $0 } ?? "")' is not a single mount option (name or name=value, no commas)")
        }
        // The driver sets the layer directories itself; one given here would replace them.
        guard !driverOwnedOptions.contains(name) else {
            throw StorageError(.invalidArgument, "parse mount option", reason:
                "'\(name)' is set by the driver from the layer's stack and cannot be given as an option")
        }
    }

    /// Overlay options that name the layer directories: only the driver sets them.
    static let driverOwnedOptions: Set<String> = ["lowerdir", "lowerdir+", "upperdir", "workdir", "datadir+"]

    /// The option as `mount(2)` data: `name` or `name=value`.
    public var description: String { value.map { "\(name)=\($0)" } ?? name }
}

/// How `get` mounts a layer.
public struct MountOptions: Sendable, Hashable {
    /// The SELinux context for every file of the mount (`context=`), when labeling is on.
    public var label: SELinuxContext?
    /// The mapping the mount should present (an idmapped mount when the driver can).
    public var idMappings: IDMappings
    /// Mount without an upper directory: nothing can be written.
    public var readOnly: Bool
    /// Skip syncs to the upper directory (overlay `volatile`); lost on a crash.
    public var volatile: Bool
    /// More options, after the driver's `mountopt` ones.
    public var extra: [MountOption]

    public init(label: SELinuxContext? = nil, idMappings: IDMappings = .identity, readOnly: Bool = false,
                volatile: Bool = false, extra: [MountOption] = []) {
        self.label = label
        self.idMappings = idMappings
        self.readOnly = readOnly
        self.volatile = volatile
        self.extra = extra
    }
}
