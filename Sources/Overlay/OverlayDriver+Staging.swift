import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A differ that fills the staging directory from a tar stream (plain, gzip or zstd).
public struct TarDiffer: Differ {
    /// The stream; read once.
    public let input: FileDescriptor

    public init(input: FileDescriptor) {
        self.input = input
    }

    public func applyDiff(into destination: FilePath, options: DifferOptions) throws(StorageError) -> DifferOutput {
        let result = try LayerApplier.apply(from: input, into: destination, options: ApplyOptions(
            idMappings: options.idMappings, whiteoutFormat: .overlay, ignoreChownErrors: options.ignoreChownErrors,
            forceMask: options.forceMask))
        return DifferOutput(target: destination, size: result.size, entries: result.entries)
    }
}

extension OverlayDriver {
    /// `<home>/staging`.
    var stagingRoot: FilePath { homeStore.path(StoreLayout.staging) }

    /// Makes `<home>/staging/<random>/` with a `diff` directory for the differ to fill and a
    /// lock (held by this driver until the directory is applied or cleaned up) so that
    /// `cleanup` in another process leaves it alone.
    public func applyDiffWithDiffer(options: DifferOptions, differ: any Differ) throws(StorageError) -> DifferOutput {
        let name = StoreLayout.DifferStaging.prefix + randomSuffix()
        let directory = stagingRoot.appending(name)
        let diff = directory.appending(StoreLayout.DifferStaging.contents)
        // Under the store lock, so that cleanup never sees the directory before its lock.
        let lock = try withStoreLock(exclusive: false) { () throws(StorageError) in
            try attempt("make staging directory", directory) { () throws(Errno) in
                let relative = try homeStore.makeStagingDirectory(name)
                let home = try homeStore.directory()
                let lock = try FileLock.acquire(FilePath(relative + "/" + StoreLayout.DifferStaging.lock), in: home,
                                                path: directory.appending(StoreLayout.DifferStaging.lock))
                // A base layer's root mode; applied to a child, the staged root takes the layer's
                // (its parent's) mode unless the differ set its own (see applyDiffFromStagingDirectory).
                let contents = FilePath(relative + "/" + StoreLayout.DifferStaging.contents)
                try home.makeDirectory(at: contents, permissions: Self.baseLayerRootMode)
                try home.changeMode(at: contents, permissions: Self.baseLayerRootMode)
                return lock
            }
        }
        do {
            var output = try differ.applyDiff(into: diff, options: DifferOptions(
                idMappings: options.idMappings, ignoreChownErrors: options.ignoreChownErrors || self.options.ignoreChownErrors,
                forceMask: options.forceMask ?? self.options.forceMask))
            output.target = diff
            stagingLocks.withLock { $0[directory] = lock }
            return output
        } catch {
            try? homeStore.directory().removeTree(at: FilePath(StoreLayout.staging + "/" + name))
            throw error
        }
    }

    /// Makes staged contents the layer's own: the layer's `diff` must be empty and not mounted;
    /// the staged directory is renamed over it in one step.
    public func applyDiffFromStagingDirectory(_ id: LayerID, parent: LayerID?, output: DifferOutput,
                                              options: DifferOptions) throws(StorageError) {
        let operation = "apply staged diff to layer \(id)"
        let directory = output.target.removingLastComponent()
        guard directory.removingLastComponent() == stagingRoot,
              output.target.lastComponent?.string == StoreLayout.DifferStaging.contents,
              let name = directory.lastComponent?.string
        else {
            throw StorageError(.invalidArgument, operation, path: output.target.string,
                               reason: "not a staging directory of this driver")
        }
        try withLayer(id, .mount, operation: operation) { (layer, _) throws(StorageError) in
            guard try isDirectParent(parent, of: layer) else {
                throw StorageError(.invalidArgument, operation, path: layer.directory.string,
                                   reason: "\(parent?.rawValue ?? "no parent") is not the layer's parent")
            }
            guard !isMounted(mountPoint(of: layer)) else {
                throw StorageError(.busy, operation, path: layer.directory.string, reason: "the layer is mounted")
            }
            try attempt(operation, layer.diff) { () throws(Errno) in
                let diff = try layer.openDirectory(StoreLayout.diff)
                defer { diff.closeQuietly() }
                guard try diff.directoryEntries().isEmpty else { throw Errno.directoryNotEmpty }
                // The staged directory takes the layer's place: give it the layer's quota project
                // (files the differ already wrote keep theirs: quota accounting starts from here).
                let home = try homeStore.directory()
                let stagedName = FilePath(StoreLayout.staging + "/" + name + "/" + StoreLayout.DifferStaging.contents)
                let staged = try home.openDirectory(at: stagedName, followLastSymlink: true)
                defer { staged.closeQuietly() }
                if let attributes = try? diff.inodeAttributes(), attributes.projectID != 0 {
                    try staged.setInodeAttributes(attributes)
                }
                // A root the differ left as staging made it takes the layer's root mode (0555 for a
                // base layer, the parent's for a child), as containers/storage's staged apply does.
                let stagedStatus = try staged.status(), layerStatus = try diff.status()
                if stagedStatus.permissions == Self.baseLayerRootMode && layerStatus.permissions != Self.baseLayerRootMode {
                    try staged.changeMode(permissions: layerStatus.permissions)
                }
                try home.rename(stagedName, to: layer.relative(StoreLayout.diff), in: layer.store.directory(), flags: .exchange)
            }
        }
        // The staging directory now holds the layer's old, empty diff.
        try? homeStore.directory().removeTree(at: FilePath(StoreLayout.staging + "/" + name))
        _ = stagingLocks.withLock { $0.removeValue(forKey: directory) }
    }

    /// Removes a staging directory (its contents or the directory itself may be given).
    public func cleanupStagingDirectory(_ stagingDirectory: FilePath) throws(StorageError) {
        var directory = stagingDirectory.lexicallyNormalized()
        if directory.lastComponent?.string == StoreLayout.DifferStaging.contents { directory = directory.removingLastComponent() }
        guard directory.removingLastComponent() == stagingRoot, let name = directory.lastComponent?.string else {
            throw StorageError(.invalidArgument, "clean up staging directory", path: stagingDirectory.string,
                               reason: "not a staging directory of this driver")
        }
        try attempt("clean up staging directory", directory) { () throws(Errno) in
            try homeStore.directory().removeTree(at: FilePath(StoreLayout.staging + "/" + name))
        }
        _ = stagingLocks.withLock { $0.removeValue(forKey: directory) }
    }

    /// The layer's `diff`: a differ may write there directly when the layer is new.
    public func differTarget(_ id: LayerID) throws(StorageError) -> FilePath {
        try locate(id, operation: "find differ target of layer \(id)").diff
    }

    /// Removes staging directories nobody holds: differ directories whose lock is free, and
    /// leftovers of creates and removes that a crash interrupted; rolls back interrupted remaps.
    /// `table` is the mount table, read once for the pass.
    ///
    /// The caller holds the exclusive store lock: creates, removes, applies and naive diffs run
    /// under the store lock (exclusive or shared), so none is in flight. Every step is tried;
    /// the first failure to roll back a remap is thrown once the pass is done (a layer left
    /// half shifted must not look cleaned up).
    func removeStaleStagingDirectories(mounts table: [Mounts.Entry]) throws(StorageError) {
        var firstError: StorageError?
        for store in writableStores {
            for (path, lock) in unheldStagingDirectories(in: store) {
                // An apply through a mount that crashed may have left its mount behind, and
                // a remove that crashed its layer's quota project: both are undone first.
                // (A differ's directory goes while its lock is held.)
                if let lock {
                    lock.holding { try? deleteDiscarded(path, mounts: table) }
                } else {
                    try? deleteDiscarded(path, mounts: table)
                }
            }
        }
        // What a crashed apply (or small write) left inside layer directories.
        for store in writableStores {
            for entry in (try? store.directory().entries()) ?? [] where entry.kind == .directory {
                if StoreLayout.isStaleProbe(entry.name) {
                    // A feature probe killed with its overlay still mounted.
                    try? deleteDiscarded(store.path(entry.name), mounts: table)
                    continue
                }
                guard !StoreLayout.reservedNames.contains(entry.name), let id = try? LayerID(entry.name),
                      let directory = try? store.layer(id).openDirectory()
                else { continue }
                defer { directory.closeQuietly() }
                // A remap a crash cut short: rolled back from its journal (or, with none, its
                // marker removed), before its `remapping.undo.new` goes with the leftovers.
                let layer = store.layer(id)
                do throws(StorageError) {
                    _ = try recoverInterruptedRemap(layer)
                } catch {
                    logger.error("could not roll back an interrupted remap", metadata: ["layer": "\(id)", "error": "\(error)"])
                    if firstError == nil { firstError = error }
                }
                for leftover in (try? directory.directoryEntries()) ?? [] where StoreLayout.isLeftover(leftover.name) {
                    try? deleteDiscarded(layer.path(leftover.name), mounts: table)
                }
                // A layer created for contents that never came (its creator died).
                if isAbandoned(id) {
                    try? discardLayer(id, in: store, mounts: table)
                }
            }
            // Short links of layers a crash took away (and links a crash never made).
            try? repairLinks(in: store)
        }
        // Views a crashed naive diff left in the run home.
        let run = counts.runHome
        for entry in (try? run.entries()) ?? [] where entry.name.hasPrefix(RunHomeLayout.naivePrefix) {
            let path = runHome.appending(entry.name)
            for view in [RunHomeLayout.naiveViews.old, RunHomeLayout.naiveViews.new] {
                try? Mounts.unmount(path.appending(view), flags: .detach)
            }
            try? run.removeTree(at: FilePath(entry.name))
        }
        if let firstError { throw firstError }
    }

    /// `<store>/staging/*` that no live operation holds, by absolute path. Under the exclusive
    /// store lock only a differ's directory can be in use (held by its `.lock`): a free one
    /// comes with its lock, now held.
    func unheldStagingDirectories(in store: StoreLayout) -> [(path: FilePath, lock: FileLock?)] {
        guard let dir = try? store.directory().openDirectory(at: FilePath(StoreLayout.staging)) else { return [] }
        defer { dir.closeQuietly() }
        var result: [(path: FilePath, lock: FileLock?)] = []
        for entry in (try? dir.directoryEntries()) ?? [] {
            let path = store.path(StoreLayout.staging).appending(entry.name)
            if entry.name.hasPrefix(StoreLayout.DifferStaging.prefix) {
                if stagingLocks.withLock({ $0[path] != nil }) { continue }
                let lock = FilePath(entry.name + "/" + StoreLayout.DifferStaging.lock)
                guard let held = try? FileLock.tryAcquire(lock, in: dir, path: path.appending(StoreLayout.DifferStaging.lock))
                else { continue }
                result.append((path, held))
                continue
            }
            result.append((path, nil))
        }
        return result
    }
}
