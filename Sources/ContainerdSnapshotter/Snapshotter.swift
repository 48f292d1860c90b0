import GraphDriver
import IDShift
import MountLabel
import Overlay
import ProjectQuota
import StrataSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One mount containerd performs: `mount -t <type> <source> <target> -o <options>`
/// (`containerd.types.Mount`).
public struct MountSpec: Sendable, Hashable {
    /// `overlay` or `bind`.
    public var type: String
    /// What is mounted (a directory for bind mounts, `overlay` for overlay).
    public var source: String
    /// The options, one a string (`lowerdir=…`, `rbind`, `ro`).
    public var options: [String]

    /// A mount spec.
    public init(type: String, source: String, options: [String]) {
        self.type = type
        self.source = source
        self.options = options
    }
}

/// containerd's snapshot model over Strata's overlay driver.
///
/// Each snapshot is one driver layer named `snap-<row>`: an active snapshot is a read-write
/// layer (with the snapshot's size and inode limits), a view a read-only layer on its parent, and
/// committing only renames the snapshot in the metadata store (its layer becomes a parent).
/// Keys are any strings and never become paths. Every operation is serialized; each change of
/// the metadata is one SQLite transaction, ordered around the layer's creation and removal so that
/// `recover()` after a crash leaves no half-made snapshot (see `SnapshotStore`).
public final class Snapshotter: @unchecked Sendable {
    /// The overlay driver holding the snapshots' layers.
    public let driver: OverlayDriver
    /// The settings it runs with.
    public let configuration: SnapshotterConfiguration
    let store: SnapshotStore
    /// Mounts the snapshotter made itself (idmapped, or too deep for one page of mount data),
    /// by snapshot row: kept for the snapshot's life and served as bind mounts.
    private let ownMounts = Mutex<[Int64: FilePath]>([:])
    /// Serializes operations (SQLite connection and driver calls).
    private let serial = Mutex<Void>(())

    /// The most bytes of mount options containerd can pass to `mount(2)` (one page, with its NUL).
    public static let mountDataLimit = 4095

    /// Opens (creating when missing) the snapshotter's store and recovers from a crash.
    public convenience init(configuration: SnapshotterConfiguration) throws(StorageError) {
        let home = configuration.root.appending("overlay")
        do throws(Errno) {
            try FileDescriptor.currentWorkingDirectory.makeDirectories(at: home)
        } catch {
            throw StorageError("create snapshotter root", path: home.string, errno: error)
        }
        let options = try DriverOptions(parsing: configuration.driverOptions)
        let driver = try OverlayDriver(home: home, runHome: configuration.runRoot.appending("overlay"), options: options,
                                       quota: ProjectQuotaControl.forHome(home), labeler: SELinuxLabeler(),
                                       shifter: LayerShifter(home: home))
        try self.init(configuration: configuration, driver: driver)
    }

    /// A snapshotter over a driver made by the caller (tests give one with their own labeler).
    public init(configuration: SnapshotterConfiguration, driver: OverlayDriver) throws(StorageError) {
        if !configuration.defaultQuota.isEmpty && !driver.quota.isSupported {
            throw StorageError(.unsupported, "start snapshotter", path: driver.home.string, reason:
                "a default size or inode limit is configured, but the filesystem of the home has no project quotas (XFS, or ext4 with prjquota)")
        }
        self.driver = driver
        self.configuration = configuration
        store = try SnapshotStore(path: configuration.root.appending("metadata.db").string, sync: configuration.metadataSync)
        try recover()
    }

    // MARK: - Recovery

    /// Finishes what a crash interrupted: a snapshot left `creating` or `removing` loses its
    /// layer and its row; a layer no row names goes; mounts the snapshotter made before are
    /// adopted again.
    public func recover() throws(StorageError) {
        try serial.withLock { _ throws(StorageError) in
            for (record, _) in try store.pending() {
                try releaseOwnMount(record.id, layer: record.layer)
                try driver.remove(record.layer)
                try store.delete(record.id)
            }
            // A ready row whose layer is gone: a machine crash (not a process kill) rolled back the
            // last changes of the metadata (`MetadataSync.normal`) but not the layer's removal.
            // Children first (their rows are newer); one that still has a child stays.
            for record in try store.all().reversed() where !driver.exists(record.layer) {
                if try store.childCount(record.id) == 0 { try store.delete(record.id) }
            }
            let records = try store.all()
            let known = Set(records.map(\.layer))
            // The driver refuses to remove a layer another stacks on: passes until none goes.
            var orphans = try driver.listLayers().filter { !known.contains($0) && $0.rawValue.hasPrefix("snap-") }
            while !orphans.isEmpty {
                let before = orphans.count
                orphans = orphans.filter { (try? driver.remove($0)) == nil }
                if orphans.count == before { break }
            }
            for record in records {
                let merged = try mergedPath(record.layer)
                if Mounts.isMountPoint(merged) { ownMounts.withLock { $0[record.id] = merged } }
            }
        }
    }

    // MARK: - Operations

    /// Creates an active snapshot `key` on the committed snapshot `parent` (none when empty) and
    /// returns its mounts.
    public func prepare(key: String, parent: String, labels: [String: String]) throws(StorageError) -> [MountSpec] {
        try create(.active, key: key, parent: parent, labels: labels)
    }

    /// Creates a read-only view `key` of the committed snapshot `parent` and returns its mounts.
    public func view(key: String, parent: String, labels: [String: String]) throws(StorageError) -> [MountSpec] {
        try create(.view, key: key, parent: parent, labels: labels)
    }

    private func create(_ kind: SnapshotKind, key: String, parent: String, labels: [String: String]) throws(StorageError) -> [MountSpec] {
        try Self.validate(key: key)
        let operation = kind == .active ? "prepare snapshot" : "create view"
        return try serial.withLock { _ throws(StorageError) -> [MountSpec] in
            var parentRecord: SnapshotRecord?
            if !parent.isEmpty {
                guard let found = try store.record(parent) else {
                    throw StorageError(.notFound, operation, reason: "parent snapshot \(quoted(parent)) does not exist")
                }
                guard found.kind == .committed else {
                    throw StorageError(.invalidArgument, operation, reason: "parent \(quoted(parent)) is not a committed snapshot")
                }
                parentRecord = found
            }
            let mappings = try SnapshotLabels.idMappings(labels)
            let label = try labels[SnapshotLabels.mountLabel].map { (text) throws(StorageError) in try SELinuxContext(text) }
                ?? configuration.mountLabel
            var options = CreateOptions(idMappings: mappings, mountLabel: label)
            if kind == .active {
                options.quota = try SnapshotLabels.quota(labels, defaults: configuration.defaultQuota)
            } else if labels[SnapshotLabels.size] != nil || labels[SnapshotLabels.inodes] != nil {
                throw StorageError(.invalidArgument, operation, reason: "size and inode limits apply to active snapshots only")
            }
            if !mappings.isIdentity && !driver.features.supportsIdmappedLowers {
                throw StorageError(.unsupported, operation, reason:
                    "user-namespace snapshots are served by idmapped overlay lowers, which this kernel's overlayfs does not stack on \(driver.features.backingFileSystem)")
            }
            let record = try store.insertCreating(key: key, kind: kind, parentID: parentRecord?.id, labels: labels, now: Self.now())
            FaultInjection.point("prepare-after-row")
            do throws(StorageError) {
                if kind == .active {
                    try driver.createReadWrite(record.layer, parent: parentRecord?.layer, options: options)
                } else {
                    options.quota = .none
                    try driver.create(record.layer, parent: parentRecord?.layer, options: options)
                }
                if parentRecord == nil { try setBaseRootMode(record.layer) }
                FaultInjection.point("prepare-after-layer")
                let mounts = try mounts(of: record)
                try store.setState(record.id, .ready)
                return mounts
            } catch {
                try? releaseOwnMount(record.id, layer: record.layer)
                try? driver.remove(record.layer)
                try? store.delete(record.id)
                throw error
            }
        }
    }

    /// The mounts of the active snapshot or view `key`.
    public func mounts(key: String) throws(StorageError) -> [MountSpec] {
        try serial.withLock { _ throws(StorageError) -> [MountSpec] in
            let record = try existing(key, "read mounts")
            return try mounts(of: record)
        }
    }

    /// Commits the active snapshot `key` as `name`, labeled `labels`.
    public func commit(name: String, key: String, labels: [String: String]) throws(StorageError) {
        try Self.validate(key: name)
        try serial.withLock { _ throws(StorageError) in
            let record = try existing(key, "commit snapshot")
            guard record.kind == .active else {
                throw StorageError(.busy, "commit snapshot", reason: "snapshot \(quoted(key)) is a \(record.kind) snapshot, not an active one")
            }
            if try store.record(name) != nil {
                throw StorageError(.alreadyExists, "commit snapshot", reason: "snapshot \(quoted(name)) already exists")
            }
            try releaseOwnMount(record.id, layer: record.layer)
            FaultInjection.point("commit-before-transaction")
            try store.commit(record.id, name: name, labels: labels, now: Self.now())
            FaultInjection.point("commit-after-transaction")
        }
    }

    /// Removes snapshot `key`, which no snapshot may sit on.
    public func remove(key: String) throws(StorageError) {
        try serial.withLock { _ throws(StorageError) in
            let record = try existing(key, "remove snapshot")
            if try store.childCount(record.id) > 0 {
                throw StorageError(.busy, "remove snapshot", reason: "snapshot \(quoted(key)) has children; remove them first")
            }
            try store.setState(record.id, .removing)
            FaultInjection.point("remove-after-mark")
            try releaseOwnMount(record.id, layer: record.layer)
            try driver.remove(record.layer)
            FaultInjection.point("remove-after-layer")
            try store.delete(record.id)
        }
    }

    /// The snapshot `key`.
    public func stat(key: String) throws(StorageError) -> SnapshotRecord {
        try serial.withLock { _ throws(StorageError) -> SnapshotRecord in try existing(key, "stat snapshot") }
    }

    /// Sets the labels of snapshot `key`: all of them (`fields` nil or empty), or the ones
    /// `fields` names (`labels` or `labels.<key>`, as a field mask names them). Other fields are
    /// immutable.
    public func update(key: String, labels: [String: String], fields: [String]) throws(StorageError) -> SnapshotRecord {
        var names: [String]? = nil
        for field in fields {
            if field == "labels" {
                names = nil
                break
            }
            guard field.hasPrefix("labels.") else {
                throw StorageError(.invalidArgument, "update snapshot", reason: "field \(quoted(field)) cannot be updated (only labels)")
            }
            names = (names ?? []) + [String(field.dropFirst("labels.".count))]
        }
        return try serial.withLock { _ throws(StorageError) -> SnapshotRecord in
            let record = try existing(key, "update snapshot")
            try store.updateLabels(record.id, labels: labels, fields: names, now: Self.now())
            return try existing(key, "update snapshot")
        }
    }

    /// Every snapshot matching `filter`.
    public func list(_ filter: SnapshotFilter) throws(StorageError) -> [SnapshotRecord] {
        try serial.withLock { _ throws(StorageError) -> [SnapshotRecord] in try store.all().filter(filter.matches) }
    }

    /// What snapshot `key`'s own layer holds: from its project quota when it has one.
    public func usage(key: String) throws(StorageError) -> DiskUsage {
        let layer = try serial.withLock { _ throws(StorageError) -> LayerID in try existing(key, "measure snapshot").layer }
        return try driver.readWriteDiskUsage(layer)
    }

    /// Removes what a crash left behind (as at start-up).
    public func cleanup() throws(StorageError) { try recover() }

    /// Unmounts the mounts the snapshotter made itself and the driver home's private bind mount,
    /// at a clean stop. Containers keep running: containerd gave each its own bind mount of them,
    /// and `mounts` makes them again when asked after the next start.
    public func shutdown() {
        serial.withLock { _ in
            let ids = Set(ownMounts.withLock { $0.keys })
            for record in (try? store.all()) ?? [] where ids.contains(record.id) {
                try? releaseOwnMount(record.id, layer: record.layer)
            }
            try? driver.cleanup()
        }
    }

    // MARK: - Helpers

    private func existing(_ key: String, _ operation: String) throws(StorageError) -> SnapshotRecord {
        guard let record = try store.record(key) else {
            throw StorageError(.notFound, operation, reason: "snapshot \(quoted(key)) does not exist")
        }
        return record
    }

    /// Keys are free-form (containerd's are `namespace/id/name`) but never empty, never longer
    /// than 4096 bytes and never hold control characters.
    static func validate(key: String) throws(StorageError) {
        guard !key.isEmpty, key.utf8.count <= 4096, !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StorageError(.invalidArgument, "check snapshot key", reason:
                "\(quoted(key)) is not a snapshot key (1 to 4096 bytes, no control characters)")
        }
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    private func mergedPath(_ layer: LayerID) throws(StorageError) -> FilePath {
        let items = try driver.metadata(of: layer)
        return FilePath(items.first { $0.key == "MergedDir" }?.value ?? "")
    }

    /// containerd's snapshotters give a snapshot on no parent a 0755 root (its testsuite checks
    /// it); the driver makes a base layer's root 0555, as containers/storage does.
    private func setBaseRootMode(_ layer: LayerID) throws(StorageError) {
        let items = try driver.metadata(of: layer)
        guard let upper = items.first(where: { $0.key == "UpperDir" })?.value else { return }
        do throws(Errno) {
            try FileDescriptor.currentWorkingDirectory.changeMode(at: FilePath(upper), permissions: FilePermissions(rawValue: 0o755))
        } catch {
            throw StorageError("set snapshot root mode", path: upper, errno: error)
        }
    }

    /// Mounts the layer through the driver (once; the mount stays until the snapshot is committed
    /// or removed) and returns a bind mount of it.
    func ownMount(of record: SnapshotRecord, options: MountOptions) throws(StorageError) -> MountSpec {
        let bindOptions = [record.kind == .view ? "ro" : "rw", "rbind"]
        if let merged = ownMounts.withLock({ $0[record.id] }), Mounts.isMountPoint(merged) {
            return MountSpec(type: "bind", source: merged.string, options: bindOptions)
        }
        let merged = try driver.get(record.layer, options: options)
        ownMounts.withLock { $0[record.id] = merged }
        return MountSpec(type: "bind", source: merged.string, options: bindOptions)
    }

    /// Unmounts (drops the driver's count of) a mount the snapshotter made for row `id`.
    private func releaseOwnMount(_ id: Int64, layer: LayerID) throws(StorageError) {
        guard let merged = ownMounts.withLock({ $0.removeValue(forKey: id) }) else { return }
        // The driver counts users; a count left from before a restart may be above one.
        var rounds = 0
        while driver.exists(layer) && Mounts.isMountPoint(merged) && rounds < 64 {
            try driver.put(layer)
            rounds += 1
        }
    }
}
