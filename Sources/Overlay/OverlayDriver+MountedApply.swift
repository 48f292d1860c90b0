import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Applies a stream made against some other layer than the parent: its whiteouts must act
    /// on what the layer shows, not on the parent alone, so it is replayed through a mount.
    ///
    /// All-or-nothing like a native apply: the stream is extracted (AUFS whiteouts kept as
    /// files) into a staging tree; a hard-link clone of `diff` becomes the upper directory of a
    /// private mount of the layer; the staging tree is replayed onto that mount (replacing
    /// files, never writing into them, so the clone's links leave the real `diff` untouched);
    /// and only then is the clone swapped in for `diff` with one `RENAME_EXCHANGE`.
    func applyThroughMount(_ layer: LayerLocation, from input: FileDescriptor,
                           options: ApplyDiffOptions) throws(StorageError) -> Int64 {
        let operation = "apply diff to layer \(layer.id) through a mount"
        let store = layer.store
        let name = StoreLayout.stagingName(.apply, layer.id)
        let staging = StoreLayout.staging + "/" + name
        let work = store.path(staging)
        typealias Sub = StoreLayout.ApplyWork
        try attempt(operation, work) { () throws(Errno) in
            let fd = try store.directory()
            _ = try store.makeStagingDirectory(name)
            for sub in Sub.all {
                try fd.makeDirectory(at: FilePath(staging + "/" + sub), permissions: .init(rawValue: 0o700))
            }
        }
        defer { try? store.directory().removeTree(at: FilePath(staging)) }
        let result = try LayerApplier.apply(from: input, into: work.appending(Sub.tree), options: ApplyOptions(
            idMappings: options.idMappings, whiteoutFormat: .aufs,
            ignoreChownErrors: self.options.ignoreChownErrors, forceMask: self.options.forceMask))

        let upper = work.appending(Sub.upper)
        try attempt(operation, layer.diff) { () throws(Errno) in
            let diff = try layer.openDirectory(StoreLayout.diff)
            defer { diff.closeQuietly() }
            let clone = try store.directory().openDirectory(at: FilePath(staging + "/" + Sub.upper))
            defer { clone.closeQuietly() }
            try TreeReplay.cloneWithHardLinks(diff, into: clone)
            try TreeCopy.copyMetadata(from: diff, name: nil, to: clone, name: nil, status: try diff.status())
            // Keep the layer's quota project (if it has one) on the directory that replaces it.
            if let attributes = try? diff.inodeAttributes(), attributes.projectID != 0 {
                try? clone.setInodeAttributes(attributes)
            }
        }
        let data = try mountData(for: layer, options: MountOptions(), upperAndWork: (upper, work.appending(Sub.work)))
        // The merged view is reached by path: it is a mount point.
        let merged = work.appending(Sub.merged)
        try attempt(operation, merged) { () throws(Errno) in
            try self.mount(data, at: merged)
        }
        do {
            try attempt(operation, merged) { () throws(Errno) in
                let tree = try store.directory().openDirectory(at: FilePath(staging + "/" + Sub.tree))
                defer { tree.closeQuietly() }
                let view = try FileDescriptor.openDirectory(merged)
                defer { view.closeQuietly() }
                try TreeReplay.replay(tree, onto: view)
            }
        } catch {
            try? Mounts.unmount(merged, flags: .detach)
            throw error
        }
        // Busy (someone looked in): detached, so that removing the work directory never stops
        // at a mount and leaves the staging tree behind.
        try attempt("unmount", merged) { () throws(Errno) in try Mounts.unmountOrDetach(merged) }
        try attempt(operation, layer.diff) { () throws(Errno) in
            try store.directory().rename(FilePath(staging + "/" + Sub.upper), to: layer.relative(StoreLayout.diff), flags: .exchange)
        }
        return result.size
    }
}
