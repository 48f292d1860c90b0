import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Applies a tar stream to the layer's own directory and returns the bytes of content
    /// written.
    ///
    /// The stream holds differences against `parent`. Only when `parent` is the layer's direct
    /// parent (the first entry of its `lower` file, or both absent) do the stream's whiteouts
    /// mean what overlay whiteouts in `diff/` mean, so only then is it extracted natively, as
    /// overlay whiteouts, into `diff/`. The extraction is all-or-nothing: a malformed or hostile
    /// stream leaves the layer as it was. Otherwise the stream is replayed through a mount of
    /// the layer (see `applyThroughMount`), just as atomically.
    public func applyDiff(_ id: LayerID, parent: LayerID?, from input: FileDescriptor,
                          options: ApplyDiffOptions) throws(StorageError) -> Int64 {
        let operation = "apply diff to layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
        let count = try counts.lock(id)
        defer { withExtendedLifetime(count) {} }
        guard !isMounted(mountPoint(of: layer)) else {
            throw StorageError(.busy, operation, path: layer.directory.string,
                               reason: "the layer is mounted; apply diffs before mounting it")
        }
        guard !isAdditionalLayer(layer) else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer's files belong to an additional layer store")
        }
        guard try isDirectParent(parent, of: layer) else {
            return try applyThroughMount(layer, from: input, options: options)
        }
        let result = try LayerApplier.apply(from: input, into: layer.diff, options: ApplyOptions(
            idMappings: options.idMappings, whiteoutFormat: .overlay,
            ignoreChownErrors: self.options.ignoreChownErrors, forceMask: self.options.forceMask))
        return result.size
    }

    /// The layer's changes against `parent`: read from its `diff` directory when `parent` is its
    /// parent (and the kernel keeps native diffs sound), else by comparing mounts of both.
    public func changes(_ id: LayerID, parent: LayerID?) throws(StorageError) -> [Change] {
        let operation = "list changes of layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        if try usesNativeDiff(layer, parent: parent) {
            return try LayerChanges.overlayChanges(layer: layer.diff, lowers: try ownAndLowerDirectories(of: layer))
        }
        return try withNaiveViews(layer, parent: parent, operation: operation) { (old, new) throws(StorageError) in
            try LayerChanges.naiveChanges(old: old, new: new)
        }
    }

    /// The bytes of the regular files the layer adds or modifies against `parent`.
    public func diffSize(_ id: LayerID, parent: LayerID?) throws(StorageError) -> Int64 {
        let operation = "measure diff of layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        if try usesNativeDiff(layer, parent: parent) {
            return try LayerChanges.diffSize(layer: layer.diff, lowers: try ownAndLowerDirectories(of: layer))
        }
        return try withNaiveViews(layer, parent: parent, operation: operation) { (old, new) throws(StorageError) in
            try LayerChanges.size(of: LayerChanges.naiveChanges(old: old, new: new), in: new)
        }
    }

    /// Writes the layer's changes against `parent` as an uncompressed tar stream (OCI
    /// whiteouts) and returns the bytes written.
    public func diff(_ id: LayerID, parent: LayerID?, to output: FileDescriptor,
                     options: DiffOptions) throws(StorageError) -> Int64 {
        let operation = "export layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        // The layer's own files are owned under its recorded mapping: that mapping, reversed,
        // gives the container's IDs back (unless the caller names another). An owner or ACL
        // entry with no container ID (a file host root wrote into the upper) is written with the
        // overflow ID, as the container itself sees it; a whiteout is always written.
        let mappings = options.idMappings.isIdentity ? try idMappings(of: id) : options.idMappings
        let unmapped = UnmappedExportIDPolicy.useOverflowID(uid: IDMap.overflowUserID(), gid: IDMap.overflowGroupID())
        let exportOptions = ExportOptions(idMappings: mappings, whiteoutFormat: .overlay, compression: .none, unmappedIDs: unmapped)
        if try usesNativeDiff(layer, parent: parent) {
            return try LayerExporter.export(layer: layer.diff, lowers: try ownAndLowerDirectories(of: layer),
                                            to: output, options: exportOptions)
        }
        return try withNaiveViews(layer, parent: parent, operation: operation) { (old, new) throws(StorageError) in
            let changes = try LayerChanges.naiveChanges(old: old, new: new)
            return try LayerExporter.export(changes: changes, root: new, to: output,
                                            options: ExportOptions(idMappings: mappings, whiteoutFormat: .aufs, unmappedIDs: unmapped))
        }
    }

    /// The directories below the layer's `diff`: its shifted copies, then its parents' stack.
    func ownAndLowerDirectories(of layer: LayerLocation) throws(StorageError) -> [FilePath] {
        try copies(of: layer) + lowerDirectories(of: layer, resolve: true)
    }

    /// Whether the layer's own directory tells its changes against `parent`: `parent` is its
    /// parent and the kernel keeps upper directories faithful (no redirects, no metacopy).
    ///
    /// A stack holding a shifted copy (`diffN`) is mounted with `metacopy=on`, which turns on
    /// `redirect_dir`: a directory renamed in the container is only a redirect in `diff`, whose
    /// contents are in the lowers. Such a layer's changes are read by comparing mounts.
    func usesNativeDiff(_ layer: LayerLocation, parent: LayerID?) throws(StorageError) -> Bool {
        guard features.nativeDiff, !isAdditionalLayer(layer) else { return false }
        if features.supportsMetacopy {
            let stack = try parentStack(of: layer)
            if !copies(of: layer).isEmpty || stack.contains(where: \.isCopy) { return false }
        }
        return try isDirectParent(parent, of: layer)
    }

    /// Mounts `parent` (when there is one) and the layer read-only in private mount points, and
    /// runs `body` on the two views. Both views show owners under the layer's recorded mapping
    /// (lowers idmapped where their own differs), so that a shifted layer's parents' files
    /// compare equal to their shifted copies.
    func withNaiveViews<R>(_ layer: LayerLocation, parent: LayerID?, operation: String,
                           _ body: (FilePath?, FilePath) throws(StorageError) -> R) throws(StorageError) -> R {
        let cwd = FileDescriptor.currentWorkingDirectory
        let work = runHome.appending("naive-\(layer.id.rawValue)-\(randomSuffix())")
        try attempt(operation, work) { () throws(Errno) in
            try cwd.makeDirectory(at: work, permissions: .init(rawValue: 0o700))
            try cwd.makeDirectory(at: work.appending("old"), permissions: .init(rawValue: 0o700))
            try cwd.makeDirectory(at: work.appending("new"), permissions: .init(rawValue: 0o700))
        }
        var mounted: [FilePath] = []
        defer {
            for point in mounted { try? Mounts.unmount(point, flags: .detach) }
            try? cwd.removeTree(at: work)
        }
        let mappings = try idMappings(of: layer.id)
        func mountView(_ location: LayerLocation, at point: FilePath) throws(StorageError) {
            let data = try mountData(for: location, options: MountOptions(idMappings: mappings, readOnly: true))
            defer { data.heldDescriptors.forEach { $0.closeQuietly() } }
            try attempt(operation, point) { () throws(Errno) in
                try self.mount(data, at: point)
            }
            mounted.append(point)
        }
        var old: FilePath?
        if let parent {
            let parentLayer = try locate(parent, operation: operation)
            old = work.appending("old")
            try mountView(parentLayer, at: old!)
        }
        try mountView(layer, at: work.appending("new"))
        return try body(old, work.appending("new"))
    }

    /// Opens files of the layer's own contents by path; a path the layer deleted (a whiteout)
    /// is not found.
    public func diffGetter(_ id: LayerID) throws(StorageError) -> any FileGetter {
        let layer = try locate(id, operation: "open layer \(id)")
        return OverlayFileGetter(directories: [layer.diff])
    }
}

/// Opens files by path inside a layer's directories, never resolving outside them.
struct OverlayFileGetter: FileGetter {
    let directories: [FilePath]

    func open(_ path: String) throws(StorageError) -> FileDescriptor {
        let relative = FilePath(String(path.drop(while: { $0 == "/" })))
        for directory in directories {
            do throws(Errno) {
                let root = try FileDescriptor.openDirectory(directory)
                defer { root.closeQuietly() }
                let st = try root.status(at: relative)
                if st.kind == .characterDevice && st.specialDevice == 0 { break }  // a whiteout
                return try root.open(at: relative, flags: O_RDONLY, resolve: [.inRoot, .noMagicLinks])
            } catch .noSuchFileOrDirectory {
                continue
            } catch {
                throw StorageError("open layer file", path: directory.appending(relative.components).string, errno: error)
            }
        }
        throw StorageError(.notFound, "open layer file", path: path, reason: "the layer holds no such file")
    }
}
