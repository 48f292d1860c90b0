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
        defer { _ = lock }
        let layer = try locate(id, operation: operation)
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
        let count = try counts.lock(id)
        defer { _ = count }
        guard !isMounted(mountPoint(of: layer), layer: layer) else {
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

    /// The layer's changes against its parent, read from its `diff` directory and its lowers.
    public func changes(_ id: LayerID, parent: LayerID?) throws(StorageError) -> [Change] {
        let operation = "list changes of layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { _ = lock }
        let layer = try locate(id, operation: operation)
        guard try isDirectParent(parent, of: layer) else {
            throw StorageError(.unsupported, operation, path: layer.directory.string, reason:
                "changes against \(parent?.rawValue ?? "no parent"), which is not the layer's parent, are not implemented yet")
        }
        return try OverlayChangeScanner.changes(layer: layer.diff, lowers: try lowerDirectories(of: layer, resolve: true))
    }

    /// The bytes of file content in the layer's own directory.
    public func diffSize(_ id: LayerID, parent: LayerID?) throws(StorageError) -> Int64 {
        let operation = "measure diff of layer \(id)"
        let lock = try storeLock(exclusive: false)
        defer { _ = lock }
        let layer = try locate(id, operation: operation)
        guard try isDirectParent(parent, of: layer) else {
            throw StorageError(.unsupported, operation, path: layer.directory.string, reason:
                "sizes against \(parent?.rawValue ?? "no parent"), which is not the layer's parent, are not implemented yet")
        }
        return try attempt(operation, layer.diff) { () throws(Errno) in
            let dir = try FileDescriptor.openDirectory(layer.diff)
            defer { dir.closeQuietly() }
            var seen = Set<UInt64>()
            var size: Int64 = 0
            try TreeCopy.walk(dir) { (_: FileDescriptor, _: String, st: FileStatus) throws(Errno) in
                guard st.kind == .regular else { return }
                if st.linkCount > 1 { guard seen.insert(st.inode).inserted else { return } }
                size += st.size
            }
            return size
        }
    }

    /// Writes the layer's changes against its parent as a tar stream.
    public func diff(_ id: LayerID, parent: LayerID?, to output: FileDescriptor,
                     options: DiffOptions) throws(StorageError) -> Int64 {
        throw StorageError(.unsupported, "export layer \(id)", reason:
            "layer export waits for LayerArchive's LayerExporter to land on main")
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
