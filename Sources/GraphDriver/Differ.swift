import SystemPackage

/// What a differ is asked to do.
public struct DifferOptions: Sendable, Hashable {
    /// Container IDs in the content become host IDs through this mapping.
    public var idMappings: IDMappings
    /// Carry on when `chown` fails.
    public var ignoreChownErrors: Bool
    /// When set, files are written with these permissions and their real mode kept in an xattr.
    public var forceMask: FilePermissions?

    public init(idMappings: IDMappings = .identity, ignoreChownErrors: Bool = false, forceMask: FilePermissions? = nil) {
        self.idMappings = idMappings
        self.ignoreChownErrors = ignoreChownErrors
        self.forceMask = forceMask
    }
}

/// What a differ produced in a staging directory.
public struct DifferOutput: Sendable, Hashable {
    /// The directory holding the layer's contents, ready to become a layer's `diff`.
    public var target: FilePath
    /// The bytes of file content written.
    public var size: Int64
    /// How many entries were written.
    public var entries: Int

    public init(target: FilePath, size: Int64, entries: Int) {
        self.target = target
        self.size = size
        self.entries = entries
    }
}

/// Fills a directory with a layer's contents by some means (a tar stream, a chunked pull…).
public protocol Differ: Sendable {
    /// Writes the layer's contents into `destination`, an empty directory, with overlay
    /// whiteouts.
    func applyDiff(into destination: FilePath, options: DifferOptions) throws(StorageError) -> DifferOutput
}

/// A driver that applies layers in two steps: fill a staging directory, then move it into a layer.
public protocol StagedApplyDriver: GraphDriver {
    /// Runs `differ` into a new staging directory and returns what it made.
    func applyDiffWithDiffer(options: DifferOptions, differ: any Differ) throws(StorageError) -> DifferOutput
    /// Makes the staged contents the layer's own (the layer's contents must be empty).
    func applyDiffFromStagingDirectory(_ id: LayerID, parent: LayerID?, output: DifferOutput,
                                       options: DifferOptions) throws(StorageError)
    /// Removes a staging directory that will not be applied.
    func cleanupStagingDirectory(_ stagingDirectory: FilePath) throws(StorageError)
    /// The directory a differ may write a layer's contents into directly.
    func differTarget(_ id: LayerID) throws(StorageError) -> FilePath
}

/// A ready-made layer in an additional layer store.
public protocol AdditionalLayer: Sendable {
    /// The layer's digest (`sha256:…`).
    var digest: String { get }
    /// The directory holding the layer's contents.
    var contents: FilePath { get }
    /// The store's `info` file: JSON describing the layer.
    func info() throws(StorageError) -> [UInt8]
    /// Opens the store's `blob` file: the layer's compressed tar.
    func blob() throws(StorageError) -> FileDescriptor
    /// Makes a layer `id` on `parent` whose contents are this one's.
    func createAs(_ id: LayerID, parent: LayerID?) throws(StorageError)
    /// Releases the handle (the store may drop the layer when nothing uses it).
    func release()
}

/// A driver that can use layers from additional layer stores.
public protocol AdditionalLayerStoreDriver: GraphDriver {
    /// Finds `<store>/[base64(reference)/]<digest>/` in the configured stores.
    func lookupAdditionalLayer(digest: String, reference: String) throws(StorageError) -> any AdditionalLayer
    /// The additional layer a layer was created from with `createAs`.
    func lookupAdditionalLayerByID(_ id: LayerID) throws(StorageError) -> any AdditionalLayer
}
