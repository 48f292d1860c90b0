import GraphDriver
import Logging
import StrataSystem
import SystemPackage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The overlayfs storage driver.
///
/// The home's layout is the one containers/storage uses (see `StoreLayout`, which names every
/// file of it, and `RunHomeLayout` for the run home's). `<home>/.lock` is the store lock: shared
/// by operations on existing layers, exclusive while a layer is created or removed (see
/// `withLayer`).
public final class OverlayDriver: GraphDriver, DiffDriver, StagedApplyDriver, AdditionalLayerStoreDriver,
    IDMappingDriver, IncompleteLayerMarking, @unchecked Sendable {
    /// The directory of layers.
    public let home: FilePath
    /// The directory of per-boot state.
    public let runHome: FilePath
    /// The driver options.
    public let options: DriverOptions
    /// What the kernel and backing filesystem can do.
    public let features: OverlayFeatures
    /// Quota limits for read-write layers.
    public let quota: any QuotaControl
    /// SELinux labels for mounts.
    public let labeler: any MountLabeler
    /// Ownership shifting.
    public let shifter: any OwnershipShifter
    let logger: Logger

    /// The home as a store: its names and its descriptor, for `*at` calls.
    let homeStore: StoreLayout
    let counts: MountCounts
    /// Where read-only layers are created when there is one (else in the home).
    let imageStore: StoreLayout?
    /// The read-only stores searched after the home and the image store.
    let additionalStores: [StoreLayout]
    /// Whether this driver made the home a private bind mount (and `cleanup` should undo it).
    let mountedHome: Bool
    /// Staging directories this driver made and holds locked until applied or cleaned up.
    let stagingLocks = Mutex<[FilePath: FileLock]>([:])

    /// Tests set this to take the older kernels' path (no `lowerdir+`) on this one.
    var preferClassicMount = false

    /// Whether a remap of a layer with parents copies the parents' owners into `diff1` even
    /// where the kernel could present them shifted at mount time (idmapped lowers). Off by
    /// default: the copy is the fallback for kernels without idmapped lowers; tests of the copy
    /// set it.
    public var shiftsParentsByCopy = false

    /// The most lower layers one overlay mount may have (the kernel's `OVL_MAX_STACK`).
    public static let maximumLowerLayers = 500

    /// Opens (creating when missing) a driver home.
    ///
    /// Refuses homes on filesystems overlayfs cannot use as an upper layer (overlayfs itself,
    /// aufs, ecryptfs, NFS) and filesystems without `d_type`. Probes features once per run home.
    public init(home: FilePath, runHome: FilePath, options: DriverOptions = DriverOptions(),
                quota: any QuotaControl = NoQuota(), labeler: any MountLabeler = NoMountLabels(),
                shifter: any OwnershipShifter = NoShifting(),
                logger: Logger = Logger(label: "strata.overlay")) throws(StorageError) {
        let home = home.lexicallyNormalized()
        let runHome = runHome.lexicallyNormalized()
        guard home.isAbsolute, runHome.isAbsolute else {
            throw StorageError(.invalidArgument, "start overlay driver", path: home.string,
                               reason: "the home and run home must be absolute paths")
        }
        self.home = home
        self.runHome = runHome
        self.options = options
        self.quota = quota
        self.labeler = labeler
        self.shifter = shifter
        self.logger = logger

        try attempt("make driver home", home) { () throws(Errno) in
            // Missing parents of the home are made searchable too (see `makeHomeTraversable`).
            try makeDirectories(home, permissions: FilePermissions(rawValue: 0o711))
            try makeDirectories(runHome)
            try FileDescriptor.currentWorkingDirectory.makeDirectoryIfMissing(at: home.appending(StoreLayout.linkDirectory))
        }
        try Self.makeHomeTraversable(home)
        let type = try attempt("inspect backing filesystem", home) { () throws(Errno) in
            try FileSystemStatus.of(home).type
        }
        switch type {
        case .overlay, .aufs, .ecryptfs, .nfs:
            throw StorageError(.unsupported, "start overlay driver", path: home.string, reason:
                "the home is on \(type), which overlayfs cannot use for its layers; put it on ext4, xfs or btrfs")
        default: break
        }
        if !options.quota.isEmpty && !quota.isSupported {
            throw StorageError(.unsupported, "start overlay driver", path: home.string, reason:
                "a default size or inode limit was asked for, but this driver has no quota support on \(type)")
        }
        // Opened before the home is bind-mounted on itself (below): a descriptor of the home's
        // own filesystem, which stays attached when `cleanup` detaches the bind.
        let homeDirectory = try attempt("open driver home", home) { () throws(Errno) in try FileDescriptor.openDirectory(home) }
        homeStore = StoreLayout(root: home, descriptor: homeDirectory)
        additionalStores = options.additionalImageStores.map { StoreLayout(readOnlyRoot: $0.appending(StoreLayout.driverDirectory)) }
        let runDirectory = try attempt("open run home", runHome) { () throws(Errno) in
            try FileDescriptor.openDirectory(runHome)
        }
        let counts = try MountCounts(runHome: runHome, runDirectory: runDirectory)
        self.counts = counts
        features = try FeatureProbes.load(home: home, runHome: counts.runHome, type: type)
        if let store = options.imageStore {
            let root = store.appending(StoreLayout.driverDirectory)
            imageStore = try attempt("make image store", root) { () throws(Errno) in
                try makeDirectories(root.appending(StoreLayout.linkDirectory))
                return StoreLayout(root: root, descriptor: try FileDescriptor.openDirectory(root))
            }
        } else {
            imageStore = nil
        }
        mountedHome = options.skipMountHome ? false : try Self.makePrivateMount(home)
    }

    /// Bind-mounts the home on itself with private propagation (so layer mounts do not spread
    /// to other namespaces), unless it already is a mount point. Returns whether it mounted.
    private static func makePrivateMount(_ home: FilePath) throws(StorageError) -> Bool {
        if Mounts.isMountPoint(home) {
            try attempt("make home mount private", home) { () throws(Errno) in
                try Mounts.mount(source: "none", target: home, type: nil, flags: .privatePropagation)
            }
            return false
        }
        try attempt("bind-mount home", home) { () throws(Errno) in
            try Mounts.mount(source: home.string, target: home, type: nil, flags: .bind)
            try Mounts.mount(source: "none", target: home, type: nil, flags: .privatePropagation)
        }
        return true
    }

    /// `overlay`.
    public var name: String { "overlay" }

    /// Whether layer diffs are read straight from their `diff` directories.
    public var supportsNativeOverlay: Bool { features.nativeDiff }

    /// What the driver found, in containers/storage's order.
    public var status: [DriverStatusItem] {
        [
            DriverStatusItem("Backing Filesystem", features.backingFileSystem.description),
            DriverStatusItem("Supports d_type", "\(features.supportsDType)"),
            DriverStatusItem("Native Overlay Diff", "\(features.nativeDiff)"),
            DriverStatusItem("Using metacopy", "\(features.usingMetacopy)"),
            DriverStatusItem("Supports shifting", "\(supportsShifting(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)], gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)]))"),
            DriverStatusItem("Supports volatile", "\(features.supportsVolatile)"),
        ]
    }

    /// Where the layer's directories are: `LowerDir` (when it has parents), `MergedDir`,
    /// `UpperDir`, `WorkDir`.
    public func metadata(of id: LayerID) throws(StorageError) -> [DriverStatusItem] {
        let layer = try locate(id, operation: "read layer metadata")
        var items: [DriverStatusItem] = []
        let lowers = try lowerPaths(of: layer, resolve: true)
        if !lowers.isEmpty {
            items.append(DriverStatusItem("LowerDir", lowers.joined(separator: ":")))
        }
        items.append(DriverStatusItem("MergedDir", mountPoint(of: layer).string))
        items.append(DriverStatusItem("UpperDir", layer.diff.string))
        items.append(DriverStatusItem("WorkDir", layer.path(StoreLayout.work).string))
        return items
    }

    /// Unmounts the home's private bind mount (when this driver made it), removes staging
    /// directories nobody holds and rolls back remaps whose process died (see `updateLayerIDMap`).
    ///
    /// Holds the exclusive store lock throughout: no create, remove or apply is in flight while
    /// staging directories go, and no `get` (which mounts under the shared lock) can mount below
    /// the home between the look at the mount table and the detach of the home.
    public func cleanup() throws(StorageError) {
        try withStoreLock(exclusive: true) { () throws(StorageError) in try cleanupLocked() }
    }

    private func cleanupLocked() throws(StorageError) {
        var firstError: StorageError?
        do throws(StorageError) {
            try removeStaleStagingDirectories(mounts: Mounts.mountTable())
        } catch {
            firstError = error
        }
        // The home's bind mount of itself (made by this or an earlier process) goes when nothing
        // is mounted below it, as containers/storage's Cleanup unmounts its home. A filesystem
        // mounted at the home by the administrator (its root is not the home's own path) stays.
        // Read again: the pass above unmounts what it deletes.
        let table = Mounts.mountTable()
        let homePath = home.string
        let busy = table.contains { $0.mountPoint.hasPrefix(homePath + "/") }
        let selfBind = table.last { $0.mountPoint == homePath }.map { $0.root != "/" && homePath.hasSuffix($0.root) } ?? false
        if (mountedHome || selfBind) && !busy {
            try? Mounts.unmount(home, flags: .detach)
        }
        if let firstError { throw firstError }
    }

    /// The read-only stores searched after the home.
    public func additionalImageStores() -> [FilePath] { options.additionalImageStores }
}
