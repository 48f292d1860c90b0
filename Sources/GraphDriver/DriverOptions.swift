import SystemPackage

/// An additional layer store: a read-only directory of ready-made layers, looked up by digest,
/// optionally under a directory named by the base64 of the image reference.
public struct AdditionalLayerStoreLocation: Sendable, Hashable {
    /// The store's root.
    public var path: FilePath
    /// Whether layers live under `<path>/<base64(reference)>/<digest>/` rather than `<path>/<digest>/`.
    public var withReference: Bool

    public init(path: FilePath, withReference: Bool) {
        self.path = path
        self.withReference = withReference
    }
}

/// The driver's own options, parsed from `key=value` strings (`--storage-opt`, or
/// `[storage.options.overlay]` in `storage.conf`). An unknown key is an error.
///
/// Keys may carry an `overlay.` or `overlay2.` prefix, as containers/storage accepts.
public struct DriverOptions: Sendable, Hashable {
    /// Mount options added to every mount (`mountopt=nodev,metacopy=on`).
    public var mountOptions: [MountOption] = []
    /// The default limits for read-write layers (`size=`, `inodes=`).
    public var quota: QuotaLimits = .none
    /// When set, files are written with these permissions and their real mode kept in an xattr
    /// (`force_mask=shared|private|0755`).
    public var forceMask: FilePermissions?
    /// Do not make the home a private bind mount.
    public var skipMountHome: Bool = false
    /// Carry on when `chown` fails while applying a layer.
    public var ignoreChownErrors: Bool = false
    /// Where read-only layers are created, when not in the home.
    public var imageStore: FilePath?
    /// Read-only stores searched after the home.
    public var additionalImageStores: [FilePath] = []
    /// Read-only stores of ready-made layers found by digest.
    public var additionalLayerStores: [AdditionalLayerStoreLocation] = []

    public init() {}

    /// Parses `key=value` strings.
    public init(parsing options: [String]) throws(StorageError) {
        self.init()
        for option in options {
            var (key, value) = try Self.split(option)
            for prefix in ["overlay2.", "overlay."] where key.hasPrefix(prefix) {
                key.removeFirst(prefix.count)
            }
            switch key {
            case "mountopt":
                mountOptions += try MountOption.parseList(value)
            case "size":
                quota.size = try QuotaLimits.parseSize(value)
            case "inodes":
                guard let n = UInt64(value) else { throw Self.bad(key, value, "a whole number") }
                quota.inodes = n
            case "force_mask":
                switch value {
                case "shared": forceMask = FilePermissions(rawValue: 0o755)
                case "private": forceMask = FilePermissions(rawValue: 0o700)
                default:
                    guard let mode = UInt16(value, radix: 8), mode <= 0o7777 else {
                        throw Self.bad(key, value, "shared, private or an octal mode")
                    }
                    forceMask = FilePermissions(rawValue: CModeT(mode))
                }
            case "skip_mount_home":
                skipMountHome = try Self.bool(key, value)
            case "ignore_chown_errors":
                ignoreChownErrors = try Self.bool(key, value)
            case "imagestore":
                imageStore = try Self.absolutePath(key, value)
            case "additionalimagestore":
                for part in value.split(separator: ",") {
                    additionalImageStores.append(try Self.absolutePath(key, String(part)))
                }
            case "additionallayerstore":
                var path = value
                var withReference = false
                if path.hasSuffix(":ref") {
                    path.removeLast(4)
                    withReference = true
                }
                additionalLayerStores.append(
                    AdditionalLayerStoreLocation(path: try Self.absolutePath(key, path), withReference: withReference))
            default:
                throw StorageError(.invalidArgument, "parse driver option", reason:
                    "unknown option '\(key)' (known: mountopt, size, inodes, force_mask, skip_mount_home, "
                        + "ignore_chown_errors, imagestore, additionalimagestore, additionallayerstore)")
            }
        }
    }

    /// Splits `key=value`, trimming spaces around both and lowercasing the key.
    public static func split(_ option: String) throws(StorageError) -> (key: String, value: String) {
        guard let eq = option.firstIndex(of: "=") else {
            throw StorageError(.invalidArgument, "parse driver option", reason: "'\(option)' is not key=value")
        }
        let key = option[..<eq].trimmingSpaces.lowercased()
        let value = option[option.index(after: eq)...].trimmingSpaces
        guard !key.isEmpty else {
            throw StorageError(.invalidArgument, "parse driver option", reason: "'\(option)' has no key")
        }
        return (key, value)
    }

    private static func bad(_ key: String, _ value: String, _ expected: String) -> StorageError {
        StorageError(.invalidArgument, "parse driver option", reason: "\(key)='\(value)' is not \(expected)")
    }

    private static func bool(_ key: String, _ value: String) throws(StorageError) -> Bool {
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw bad(key, value, "true or false")
        }
    }

    private static func absolutePath(_ key: String, _ value: String) throws(StorageError) -> FilePath {
        let path = FilePath(value)
        guard path.isAbsolute else { throw bad(key, value, "an absolute path") }
        return path.lexicallyNormalized()
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
