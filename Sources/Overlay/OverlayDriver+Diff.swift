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
        return try withLayer(id, .write, operation: operation) { (layer, _) throws(StorageError) in
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
    }

    /// The layer's changes against `parent`: read from its `diff` directory when `parent` is its
    /// parent (and the kernel keeps native diffs sound), else by comparing mounts of both.
    public func changes(_ id: LayerID, parent: LayerID?) throws(StorageError) -> [Change] {
        try withChanges(of: id, against: parent, operation: "list changes of layer \(id)",
                        native: LayerChanges.overlayChanges(layer:lowers:)) { (old, new) throws(StorageError) in
            try LayerChanges.naiveChanges(old: old, new: new)
        }
    }

    /// The bytes of the regular files the layer adds or modifies against `parent`.
    public func diffSize(_ id: LayerID, parent: LayerID?) throws(StorageError) -> Int64 {
        try withChanges(of: id, against: parent, operation: "measure diff of layer \(id)",
                        native: LayerChanges.diffSize(layer:lowers:)) { (old, new) throws(StorageError) in
            try LayerChanges.size(of: LayerChanges.naiveChanges(old: old, new: new), in: new)
        }
    }

    /// Reads the layer's changes against `parent` under the shared store lock: `native` on its
    /// `diff` and the directories below when `usesNativeDiff`, else `naive` on mounted views.
    private func withChanges<R>(of id: LayerID, against parent: LayerID?, operation: String,
                                native: (FilePath, [FilePath]) throws(StorageError) -> R,
                                naive: (FilePath?, FilePath) throws(StorageError) -> R) throws(StorageError) -> R {
        try withLayer(id, operation: operation) { (layer) throws(StorageError) in
            if try usesNativeDiff(layer, parent: parent) {
                return try native(layer.diff, try ownAndLowerDirectories(of: layer))
            }
            return try withNaiveViews(layer, parent: parent, operation: operation, naive)
        }
    }

    /// Writes the layer's changes against `parent` as an uncompressed tar stream (OCI
    /// whiteouts) and returns the bytes written.
    public func diff(_ id: LayerID, parent: LayerID?, to output: FileDescriptor,
                     options: DiffOptions) throws(StorageError) -> Int64 {
        let operation = "export layer \(id)"
        return try withLayer(id, operation: operation) { (layer) throws(StorageError) in
            try export(layer, parent: parent, to: output, options: options, operation: operation)
        }
    }

    private func export(_ layer: LayerLocation, parent: LayerID?, to output: FileDescriptor, options: DiffOptions,
                        operation: String) throws(StorageError) -> Int64 {
        // The layer's own files are owned under its recorded mapping: that mapping, reversed,
        // gives the container's IDs back (unless the caller names another). An owner or ACL
        // entry with no container ID (a file host root wrote into the upper) is written with the
        // overflow ID, as the container itself sees it; a whiteout is always written.
        let mappings = options.idMappings.isIdentity ? try recordedMappings(of: layer) : options.idMappings
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
        let run = counts.runHome
        let name = RunHomeLayout.naivePrefix + "\(layer.id.rawValue)-\(randomSuffix())"
        let work = runHome.appending(name)
        let (oldName, newName) = RunHomeLayout.naiveViews
        try attempt(operation, work) { () throws(Errno) in
            for directory in [name, name + "/" + oldName, name + "/" + newName] {
                try run.makeDirectory(at: FilePath(directory), permissions: .init(rawValue: 0o700))
            }
        }
        var mounted: [FilePath] = []
        defer {
            for point in mounted { try? Mounts.unmount(point, flags: .detach) }
            try? run.removeTree(at: FilePath(name))
        }
        let mappings = try recordedMappings(of: layer)
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
            old = work.appending(oldName)
            try mountView(parentLayer, at: old!)
        }
        try mountView(layer, at: work.appending(newName))
        return try body(old, work.appending(newName))
    }

    /// Opens files of the layer's own contents by path; a path the layer deleted (a whiteout)
    /// is not found.
    public func diffGetter(_ id: LayerID) throws(StorageError) -> any FileGetter {
        let layer = try locate(id, operation: "open layer \(id)")
        return OverlayFileGetter(layers: [layer])
    }
}

/// Opens files by path inside layers' `diff` directories, never resolving outside them.
struct OverlayFileGetter: FileGetter {
    let layers: [LayerLocation]

    func open(_ path: String) throws(StorageError) -> FileDescriptor {
        let relative = FilePath(String(path.drop(while: { $0 == "/" })))
        for layer in layers {
            do throws(Errno) {
                let root = try layer.openDirectory(StoreLayout.diff)
                defer { root.closeQuietly() }
                let st = try root.status(at: relative)
                if st.kind == .characterDevice && st.specialDevice == 0 { break }  // a whiteout
                return try root.open(at: relative, flags: O_RDONLY, resolve: [.inRoot, .noMagicLinks])
            } catch .noSuchFileOrDirectory {
                continue
            } catch {
                throw StorageError("open layer file", path: layer.diff.appending(relative.components).string, errno: error)
            }
        }
        throw StorageError(.notFound, "open layer file", path: path, reason: "the layer holds no such file")
    }
}
