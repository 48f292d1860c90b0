import GraphDriver
import SystemPackage

/// How `strata-snapshotter` is set up: where its store is, and the defaults for new snapshots.
///
/// Read from the `[snapshotter]` section of a storage.conf-style file (`--config FILE`):
///
/// ```toml
/// [snapshotter]
/// run_root = "/run/strata-snapshotter"    # the driver's per-boot state (mount counts)
/// size = "10G"                            # default size limit of active snapshots (project quota)
/// inodes = "100000"                       # default inode limit of active snapshots
/// mount_label = "system_u:object_r:container_file_t:s0"   # SELinux context of every mount
/// mountopt = "nodev"                      # driver mount options (storage.conf's mountopt)
/// metadata_sync = "normal"                # or "full": fsync the metadata at every change
/// ```
///
/// Other sections are skipped, so the file may be the store's storage.conf itself.
public struct SnapshotterConfiguration: Sendable {
    /// The snapshotter's directory: `metadata.db` and the driver home `overlay/`.
    public var root: FilePath
    /// The parent of the driver's run home.
    public var runRoot: FilePath
    /// Limits for every active snapshot that has no limit label of its own.
    public var defaultQuota: QuotaLimits
    /// The SELinux context mounts are labeled with (when SELinux is on), unless a snapshot's
    /// label says otherwise.
    public var mountLabel: SELinuxContext?
    /// Driver options (`mountopt=…` and the others `strata --storage-opt` takes).
    public var driverOptions: [String]
    /// When the metadata database reaches the disk (`normal` unless configured).
    public var metadataSync: MetadataSync

    /// The defaults for a snapshotter in `root`.
    public init(root: FilePath) {
        self.root = root
        runRoot = "/run/strata-snapshotter"
        defaultQuota = .none
        mountLabel = nil
        driverOptions = []
        metadataSync = .normal
    }

    /// Reads the `[snapshotter]` section of `text` over the defaults for `root`.
    public init(root: FilePath, parsing text: String, path: String) throws(StorageError) {
        self.init(root: root)
        var inSection = false
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = Self.strippingComment(rawLine).trimmingWhitespace()
            if line.isEmpty { continue }
            func failure(_ why: String) -> StorageError {
                StorageError(.invalidArgument, "read snapshotter config", path: "\(path):\(number + 1)", reason: why)
            }
            if line.hasPrefix("[") {
                inSection = line == "[snapshotter]"
                continue
            }
            guard inSection else { continue }
            guard let eq = line.firstIndex(of: "=") else { throw failure("expected key = \"value\"") }
            let key = line[..<eq].trimmingWhitespace()
            var value = line[line.index(after: eq)...].trimmingWhitespace()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            } else if value.contains("\"") {
                throw failure("the value of \(key) is not one quoted string")
            }
            switch key {
            case "run_root":
                guard value.hasPrefix("/") else { throw failure("run_root must be an absolute path") }
                runRoot = FilePath(value)
            case "size": defaultQuota.size = try QuotaLimits.parseSize(value)
            case "inodes":
                guard let n = UInt64(value) else { throw failure("inodes = \"\(value)\" is not a whole number") }
                defaultQuota.inodes = n
            case "mount_label": mountLabel = try SELinuxContext(value)
            case "mountopt": driverOptions.append("mountopt=\(value)")
            case "metadata_sync":
                guard let sync = MetadataSync(rawValue: value) else { throw failure("metadata_sync = \"\(value)\" is not normal or full") }
                metadataSync = sync
            default: throw failure("'\(key)' is not a snapshotter setting (run_root, size, inodes, mount_label, mountopt, metadata_sync)")
            }
        }
    }

    private static func strippingComment(_ line: Substring) -> Substring {
        var inQuotes = false
        for index in line.indices {
            if line[index] == "\"" { inQuotes.toggle() }
            if line[index] == "#", !inQuotes { return line[..<index] }
        }
        return line
    }
}

/// When a change of the snapshot metadata is on disk: SQLite's `synchronous` setting in WAL mode.
///
/// Either way a transaction is atomic and a killed snapshotter (SIGKILL, a crash) loses none that
/// returned: a commit has written its pages to the write-ahead log through the kernel, which keeps
/// them when the process dies. They differ only when the machine itself goes down.
public enum MetadataSync: String, Sendable {
    /// No fsync at a commit (the log is synced at checkpoints): after a power loss the last few
    /// changes may be rolled back, never half applied. The driver does not fsync a snapshot's new
    /// or removed directories either (nor does containerd's overlayfs snapshotter), so `full` buys
    /// no power-loss guarantee for the snapshot as a whole; start-up reconciles rows and layers.
    case normal
    /// An fsync of the log at every commit (about 0.5 ms each here).
    case full
}

/// The labels through which containerd and its users ask for Strata's features.
public enum SnapshotLabels {
    /// `ctr run --remap-labels`'s user-namespace mapping of user IDs: `container:host:size`
    /// (containerd's `WithRemapperLabels`).
    public static let uidMapping = "containerd.io/snapshot/uidmapping"
    /// The same for group IDs.
    public static let gidMapping = "containerd.io/snapshot/gidmapping"
    /// The size limit of an active snapshot (`512M`, `10G`): a project quota. (Labels under
    /// `containerd.io/snapshot/` are the ones containerd passes on to snapshotters.)
    public static let size = "containerd.io/snapshot/strata.size"
    /// The inode limit of an active snapshot.
    public static let inodes = "containerd.io/snapshot/strata.inodes"
    /// The SELinux context of the snapshot's mounts.
    public static let mountLabel = "containerd.io/snapshot/strata.mount-label"

    /// The ID mappings the labels ask for; identity when neither is there. Both or neither.
    static func idMappings(_ labels: [String: String]) throws(StorageError) -> IDMappings {
        let uid = labels[uidMapping], gid = labels[gidMapping]
        if uid == nil && gid == nil { return .identity }
        guard let uid, let gid else {
            throw StorageError(.invalidArgument, "read snapshot labels", reason:
                "\(uidMapping) and \(gidMapping) must be given together")
        }
        func parse(_ text: String) throws(StorageError) -> [IDMap] {
            var maps: [IDMap] = []
            for part in text.split(separator: ",") { maps.append(try IDMap(parsing: part)) }
            guard !maps.isEmpty else {
                throw StorageError(.invalidArgument, "read snapshot labels", reason: "an ID mapping label is empty")
            }
            return maps
        }
        return IDMappings(uidMap: try parse(uid), gidMap: try parse(gid))
    }

    /// The limits the labels ask for, over `defaults`.
    static func quota(_ labels: [String: String], defaults: QuotaLimits) throws(StorageError) -> QuotaLimits {
        var limits = defaults
        if let size = labels[size] { limits.size = try QuotaLimits.parseSize(size) }
        if let inodes = labels[inodes] {
            guard let n = UInt64(inodes) else {
                throw StorageError(.invalidArgument, "read snapshot labels", reason: "\(Self.inodes)=\(inodes) is not a whole number")
            }
            limits.inodes = n
        }
        return limits
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
