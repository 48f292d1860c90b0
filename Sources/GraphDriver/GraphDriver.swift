import SystemPackage

/// A storage driver: it owns a home directory of layers, each a directory of files stacked on
/// its parent's, and mounts them.
///
/// Every operation is safe to call from several threads and several processes sharing one home
/// and run home.
public protocol GraphDriver: AnyObject, Sendable {
    /// The driver's name (`overlay`).
    var name: String { get }
    /// What the driver found about its host, in a fixed order (`Backing Filesystem`, …).
    var status: [DriverStatusItem] { get }
    /// Where a layer's directories are (`WorkDir`, `MergedDir`, `UpperDir`, `LowerDir`).
    func metadata(of id: LayerID) throws(StorageError) -> [DriverStatusItem]
    /// Unmounts what the driver mounted for itself and removes stale staging directories.
    func cleanup() throws(StorageError)

    /// Creates a read-only layer on `parent` (a base layer when `nil`).
    func create(_ id: LayerID, parent: LayerID?, options: CreateOptions) throws(StorageError)
    /// Creates a writable (container) layer on `parent`; it may carry quota limits.
    func createReadWrite(_ id: LayerID, parent: LayerID?, options: CreateOptions) throws(StorageError)
    /// Creates a layer on `parent` holding a copy of `template`'s own contents.
    func createFromTemplate(_ id: LayerID, template: LayerID, parent: LayerID?, options: CreateOptions,
                            readWrite: Bool) throws(StorageError)
    /// Removes a layer, unmounting it first; removing a missing layer succeeds.
    func remove(_ id: LayerID) throws(StorageError)
    /// Whether the layer exists (in the home or an additional image store).
    func exists(_ id: LayerID) -> Bool
    /// The layers in the home.
    func listLayers() throws(StorageError) -> [LayerID]
    /// The read-only stores searched after the home.
    func additionalImageStores() -> [FilePath]

    /// Mounts the layer over its parents and returns the mount point. Mounts are counted: each
    /// `get` needs a `put`, across processes.
    func get(_ id: LayerID, options: MountOptions) throws(StorageError) -> FilePath
    /// Releases one `get`; the last one unmounts.
    func put(_ id: LayerID) throws(StorageError)
    /// What a writable layer holds (from its quota when it has one, else by walking it).
    func readWriteDiskUsage(_ id: LayerID) throws(StorageError) -> DiskUsage
}

/// How a tar stream is applied to a layer.
public struct ApplyDiffOptions: Sendable, Hashable {
    /// Container IDs in the stream become host IDs through this mapping.
    public var idMappings: IDMappings
    /// The label of the mount used when the diff cannot be applied natively.
    public var mountLabel: SELinuxContext?

    public init(idMappings: IDMappings = .identity, mountLabel: SELinuxContext? = nil) {
        self.idMappings = idMappings
        self.mountLabel = mountLabel
    }
}

/// How a layer is exported as a tar stream.
public struct DiffOptions: Sendable, Hashable {
    /// Host IDs on disk become container IDs in the stream through this mapping.
    public var idMappings: IDMappings
    /// The label of mounts used when the diff cannot be computed natively.
    public var mountLabel: SELinuxContext?

    public init(idMappings: IDMappings = .identity, mountLabel: SELinuxContext? = nil) {
        self.idMappings = idMappings
        self.mountLabel = mountLabel
    }
}

/// Opens files of one layer by their path inside the layer.
public protocol FileGetter: Sendable {
    /// Opens `path` (`/etc/passwd` or `etc/passwd`) for reading; it cannot resolve outside the layer.
    func open(_ path: String) throws(StorageError) -> FileDescriptor
}

/// A driver that turns layers into tar streams and back.
public protocol DiffDriver: GraphDriver {
    /// Applies a tar stream (plain, gzip or zstd) to the layer and returns the bytes written.
    /// `parent` is the layer the stream was made against.
    func applyDiff(_ id: LayerID, parent: LayerID?, from input: FileDescriptor,
                   options: ApplyDiffOptions) throws(StorageError) -> Int64
    /// Writes the layer's changes against `parent` as a tar stream; returns the bytes written.
    func diff(_ id: LayerID, parent: LayerID?, to output: FileDescriptor,
              options: DiffOptions) throws(StorageError) -> Int64
    /// The layer's changes against `parent`, sorted by path.
    func changes(_ id: LayerID, parent: LayerID?) throws(StorageError) -> [Change]
    /// The bytes the layer's changes against `parent` hold.
    func diffSize(_ id: LayerID, parent: LayerID?) throws(StorageError) -> Int64
    /// Opens files of the layer's own contents by path.
    func diffGetter(_ id: LayerID) throws(StorageError) -> any FileGetter
}

/// A driver whose layers' ID mappings can change.
public protocol IDMappingDriver: GraphDriver {
    /// Rewrites the layer's files from one mapping to another.
    func updateLayerIDMap(_ id: LayerID, toContainer: IDMappings, toHost: IDMappings,
                          mountLabel: SELinuxContext?) throws(StorageError)
    /// Whether `get` can present these mappings without rewriting files.
    func supportsShifting(uidMap: [IDMap], gidMap: [IDMap]) -> Bool
}
