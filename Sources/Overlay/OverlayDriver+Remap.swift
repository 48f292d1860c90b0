import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver {
    /// Rewrites the layer's files to a new mapping (`toHost`) and records it.
    ///
    /// The layer's own files (`diff`, and its shifted copies `diffN`) are owned under the mapping
    /// its `idmaps` records; they are shifted in place from that one (`toContainer` is what the
    /// caller believes it is; the record wins, so a layer mounted with mappings, whose files
    /// were shifted to them, remaps from any state). A layer with parents also needs its
    /// parents' files to appear with the new owners. Where the kernel stacks idmapped lowers,
    /// nothing more is written: every mount of the layer presents its parents idmapped to its
    /// recorded mapping (see `get`), which costs one idmapped clone per parent at mount time
    /// instead of a walk of the whole image (measured here: 1.1 s for a Debian minbase child,
    /// 13 s for 100,000 files, under load, against a few milliseconds). Otherwise (or with
    /// `shiftsParentsByCopy`), and when it has no shifted copy yet, they are copied, as
    /// metadata only where the kernel has metacopy, into a new lower directory `diff1` between
    /// the layer's `diff` and its parents (containers/storage's `diff` → `diff1` rotation, but
    /// without the layer's own files, which stay in `diff`, so its changes stay its own). The
    /// copy is the upper directory of a volatile mount of the parents' stack (each parent
    /// idmapped to show container IDs), every name of which is chowned (hard links included:
    /// a copy-up splits them), synced once, and renamed in last.
    ///
    /// All or nothing: before any file changes, the layer's directory gets a `remapping`
    /// marker (this process, the mappings, whether a copy is made) and, before the in-place
    /// shift, `remapping.undo` journals (every value it replaces). A failure puts the layer back
    /// and rethrows; after a crash, `cleanup`, `check(repair: true)`, the next `get` or the next
    /// remap roll it back from the journal (removing a copy not yet complete). The layer must
    /// not be mounted.
    public func updateLayerIDMap(_ id: LayerID, toContainer: IDMappings, toHost: IDMappings,
                                 mountLabel: SELinuxContext?) throws(StorageError) {
        let operation = "remap layer \(id)"
        // The store lock (shared) keeps `cleanup` and `check` from rolling back a remap in
        // flight; the layer's lock keeps mounts, applies and removes of it away until it is done.
        try withLayer(id, .write, operation: operation) { (layer, count) throws(StorageError) in
            guard count.count == 0 else {
                throw StorageError(.busy, operation, path: layer.directory.string, reason: "the layer is mounted")
            }
            try remap(layer, count: count, toContainer: toContainer, toHost: toHost, mountLabel: mountLabel, operation: operation)
        }
    }

    /// `updateLayerIDMap` for a caller that holds the layer's lock.
    private func remap(_ layer: LayerLocation, count: LockedMountCount, toContainer: IDMappings, toHost: IDMappings,
                       mountLabel: SELinuxContext?, operation: String) throws(StorageError) {
        let id = layer.id
        try recoverBeforeChange(layer, count: count, operation: operation)
        let recorded = try recordedMappings(of: layer)
        if recorded != toContainer {
            logger.notice("remap: the layer's files are owned under its recorded mapping, not the one given",
                          metadata: ["layer": "\(id)", "recorded": "\(Self.render(recorded))"])
        }
        guard recorded != toHost else { return }
        // The parents need a shifted copy only when no mount could show them shifted: where the
        // kernel stacks idmapped lowers, every mount of the layer idmaps them to its mapping.
        let needsCopy = try !lowerEntries(of: layer).isEmpty && copies(of: layer).isEmpty
            && (shiftsParentsByCopy || !presentsParentsByIdmapping(toHost))
        try writeRemapMarker(layer, from: recorded, to: toHost, copying: needsCopy)
        if needsCopy {
            do throws(StorageError) {
                try buildShiftedCopy(layer, count: count, to: toHost, mountLabel: mountLabel)
            } catch {
                removeCopyStaging(layer)
                removeRemapFiles(layer)
                throw error
            }
        }
        try shiftOwnFiles(layer, count: count, from: recorded, to: toHost, installingCopy: needsCopy)
    }

    /// Whether mounts can show a layer's parents under `mappings` by idmapping them: the kernel
    /// stacks idmapped lowers, takes them through `lowerdir+`, and the shifter makes them.
    func presentsParentsByIdmapping(_ mappings: IDMappings) -> Bool {
        mappings.isIdentity || (features.supportsLowerdirAppend && supportsShifting(uidMap: mappings.uidMap, gidMap: mappings.gidMap))
    }

    /// Rolls back a remap of this layer that a crash cut short (its journal is the only record
    /// of what its files were) and clears a journal left without its marker. The caller holds
    /// the layer's lock.
    func recoverBeforeChange(_ layer: LayerLocation, count: LockedMountCount, operation: String) throws(StorageError) {
        if hasRemapMarker(layer) {
            guard !remapIsRunning(layer) else {
                throw StorageError(.busy, operation, path: layer.directory.string, reason: "another process is remapping the layer")
            }
            _ = try rollBackRemap(layer, count: count)
        }
        removeCopyStaging(layer)
        removeRemapFiles(layer)  // a journal left without its marker belongs to no remap
    }

    /// Marker lines: stamp, from (uid, gid), to (uid, gid), the mapping `idmaps` recorded before
    /// (uid, gid), and `copy diff1` when the remap installs a new shifted copy.
    func writeRemapMarker(_ layer: LayerLocation, from: IDMappings, to: IDMappings, copying: Bool) throws(StorageError) {
        try attempt("remap layer \(layer.id)", layer.path(StoreLayout.remapMarker)) { () throws(Errno) in
            try layer.write(ProcessStamp.current.description + "\n" + Self.render(from) + Self.render(to) + Self.render(from)
                                + (copying ? StoreLayout.remapCopyLine + "\n" : ""), to: StoreLayout.remapMarker)
        }
    }

    /// The journal of one of the layer's own directories: `remapping.undo` for `diff`,
    /// `remapping.undo.diffN` for a copy.
    func journalPath(_ layer: LayerLocation, for tree: FilePath) -> FilePath {
        layer.path(StoreLayout.journal(for: tree.lastComponent?.string ?? StoreLayout.diff))
    }

    /// Shifts the layer's own files (`diff` and its copies) in place from `from` to `to`, renames
    /// a built copy in (`installingCopy`), records `to` and opens the layer's directory to the
    /// new root. The marker is written. On a failure the plans' undo is applied at once (and a
    /// staged copy removed); if even that fails, the journals and marker stay for `cleanup`.
    func shiftOwnFiles(_ layer: LayerLocation, count: LockedMountCount, from: IDMappings, to: IDMappings,
                       installingCopy: Bool) throws(StorageError) {
        let trees = [layer.diff] + copies(of: layer)
        var prepared: [any PreparedOwnershipShift] = []
        do throws(StorageError) {
            for tree in trees {
                let plan = try shifter.prepareShift(tree, from: from, to: to, ignoreChownErrors: options.ignoreChownErrors)
                prepared.append(plan)
            }
            // `diff`'s journal first: its presence is what tells a rollback that files may have changed.
            for (tree, plan) in zip(trees, prepared) {
                try plan.writeUndoJournal(to: journalPath(layer, for: tree), recordingNamesIn: nil)
            }
        } catch {
            removeCopyStaging(layer)
            removeRemapFiles(layer)  // nothing was changed
            throw error
        }
        do throws(StorageError) {
            for plan in prepared { try plan.apply() }
            if installingCopy {
                try attempt("install the shifted copy", layer.path(StoreLayout.copyStaging)) { () throws(Errno) in
                    try layer.rename(StoreLayout.copyStaging, to: StoreLayout.copyName(1), flags: .noReplace)
                }
            }
            try recordIDMappings(to, for: layer)
            try grantTraversal(of: layer, to: to)
            // One sync, before the journals go: until then a crash rolls everything back.
            try syncFileSystem(of: layer.diff)
        } catch {
            do throws(StorageError) {
                _ = try rollBackRemap(layer, count: count)
            } catch let undoError {
                logger.error("could not undo a failed remap; strata cleanup rolls it back",
                             metadata: ["layer": "\(layer.id)", "error": "\(undoError)"])
            }
            throw error
        }
        // Done: the journals go first, so that a marker without a journal always means that the
        // layer's owners and `idmaps` agree (nothing changed yet, or everything recorded).
        removeRemapFiles(layer)
    }

    /// Builds `diff1.staging`: the upper directory of a volatile (metacopy where the kernel has
    /// it) mount of the layer's parents' stack, each parent idmapped to show container IDs,
    /// with every name of the merged tree chowned to `to`. Nothing of the layer changes.
    private func buildShiftedCopy(_ layer: LayerLocation, count: LockedMountCount, to: IDMappings,
                                  mountLabel: SELinuxContext?) throws(StorageError) {
        let operation = "remap layer \(layer.id): copy the parents' owners"
        let staging = layer.path(StoreLayout.copyStaging)
        let work = layer.path(StoreLayout.copyWork)
        let stack = try parentStack(of: layer)
        // The merged root's mode: the parent's `diff`'s (through its short link).
        let top = stack.first.map { ($0.store, FilePath($0.relativePath)) } ?? (layer.store, layer.relative(StoreLayout.diff))
        let rootMode = (try? top.0.directory().status(at: top.1, followSymlinks: true).permissions) ?? FilePermissions(rawValue: 0o755)
        try attempt(operation, staging) { () throws(Errno) in
            try layer.makeDirectory(StoreLayout.copyStaging, permissions: rootMode)
            try layer.store.directory().changeMode(at: layer.relative(StoreLayout.copyStaging), permissions: rootMode)
            try layer.makeDirectory(StoreLayout.copyWork, permissions: FilePermissions(rawValue: 0o700))
        }
        // The view shows container IDs (the identity): lowers owned under other mappings are
        // idmapped back to them, and the walk then shifts identity -> `to`.
        var data = try mountData(for: layer, stack: stack, upper: (staging, work),
                                 options: MountOptions(idMappings: .identity), operation: operation)
        data = try viewContainerIDs(data, stack: stack, operation: operation)
        // Metadata only: a chowned file's data stays in the layer below.
        if features.supportsMetacopy { data.add(try .value("metacopy", "on")) }
        data = try finishMountData(data, for: layer, options: MountOptions(label: mountLabel, volatile: features.supportsVolatile),
                                   readOnly: false, operation: operation)
        let merged = mountPoint(of: layer)
        do throws(StorageError) {
            try attempt(operation, merged) { () throws(Errno) in try mount(data, at: merged) }
        } catch {
            data.heldDescriptors.forEach { $0.closeQuietly() }
            throw error
        }
        data.heldDescriptors.forEach { $0.closeQuietly() }
        do throws(StorageError) {
            // The planner walks an overlay mount name by name (no hard-link dedupe there).
            let plan = try shifter.prepareShift(merged, from: .identity, to: to, ignoreChownErrors: options.ignoreChownErrors)
            try plan.apply()
            try syncFileSystem(of: merged)
        } catch {
            try? unmount(merged)
            throw error
        }
        try unmount(merged)
        try? layer.store.directory().removeTree(at: layer.relative(StoreLayout.copyWork))
    }

    /// `data` with each lower that is not covered by a shifted copy and whose layer records a
    /// mapping idmapped back to container IDs (the identity view).
    private func viewContainerIDs(_ data: OverlayMountData, stack: [StackDirectory],
                                  operation: String) throws(StorageError) -> OverlayMountData {
        var data = data
        var covered = false
        for (index, entry) in stack.enumerated() {
            if covered && !entry.isCopy { break }
            covered = covered || entry.isCopy
            let own = try recordedMappings(in: entry.store, directory: entry.layerDirectory)
            guard !own.isIdentity else { continue }
            let clone: FileDescriptor
            do throws(StorageError) {
                clone = try shifter.idmappedMount(of: FilePath(entry.path), mappings: Self.composedMapping(from: own, to: .identity))
            } catch {
                data.heldDescriptors.forEach { $0.closeQuietly() }
                throw error
            }
            data.heldDescriptors.append(clone)
            data.lowers[index] = "/proc/self/fd/\(clone.rawValue)"
            data.needsContext = true
        }
        return data
    }

    /// Removes a shifted copy being built (and its work directory), if there is one.
    func removeCopyStaging(_ layer: LayerLocation) {
        for name in [StoreLayout.copyStaging, StoreLayout.copyWork] { try? layer.removeTreeIfPresent(name) }
    }
}
