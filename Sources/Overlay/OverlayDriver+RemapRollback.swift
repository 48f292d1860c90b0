import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver {
    /// What putting a layer back after an interrupted remap did.
    enum RemapRecovery: Sendable, Hashable {
        /// The journal was applied: the layer's owners and `idmaps` are as before the remap.
        case rolledBack
        /// There was no journal (the remap had changed nothing yet, or had finished and recorded
        /// everything): only the marker went.
        case markerRemoved
    }

    /// Whether the layer's directory holds a remap marker.
    func hasRemapMarker(_ layer: LayerLocation) -> Bool {
        layer.has(StoreLayout.remapMarker)
    }

    /// Whether the process the layer's remap marker names still runs.
    func remapIsRunning(_ layer: LayerLocation) -> Bool {
        guard let text = try? layer.read(StoreLayout.remapMarker) else { return false }
        return ProcessStamp.isAlive(text.split(separator: "\n").first ?? "")
    }

    /// Rolls back the layer's remap if its process is gone; what `cleanup` and `check --repair`
    /// do. Takes the layer's lock; the caller holds the store lock exclusively. Returns `nil`
    /// when there was nothing to do (no marker, or its process still runs).
    func recoverInterruptedRemap(_ layer: LayerLocation) throws(StorageError) -> RemapRecovery? {
        guard hasRemapMarker(layer), !remapIsRunning(layer) else { return nil }
        return try counts.withLock(layer.id) { (count) throws(StorageError) in try rollBackRemap(layer, count: count) }
    }

    /// Puts the layer back as it was before a remap that did not finish (a crash, or a failure
    /// in `updateLayerIDMap`), then removes the journal and the marker. The caller holds the
    /// layer's lock, and no live remap of it runs.
    ///
    /// The remap's mount (a layer with parents is shifted through one) is unmounted and its
    /// count reset first: the rollback works on `diff` itself. With a journal, the shifter puts
    /// back every owner, attribute and mode it recorded and removes every name `diff` did not
    /// hold before (copy-ups); `idmaps` gets back the mapping the marker says it had. Without a
    /// journal nothing had been changed, or everything had been and recorded, so the owners and
    /// `idmaps` already agree. Safe to repeat after being interrupted itself.
    func rollBackRemap(_ layer: LayerLocation, count: LockedMountCount) throws(StorageError) -> RemapRecovery {
        let journal = layer.path(StoreLayout.remapJournal)
        let merged = mountPoint(of: layer)
        if isMounted(merged) { try unmount(merged) }
        if count.count != 0 { try count.set(0) }
        var result = RemapRecovery.markerRemoved
        // A copy still being built is never part of the layer.
        removeCopyStaging(layer)
        if layer.has(StoreLayout.remapJournal) {
            // Marker lines: stamp, from (uid, gid), to (uid, gid), the recorded mapping before
            // (uid, gid; absent in markers older than the journal, where it was `from`), and
            // `copy diff1` when the remap installs a new shifted copy.
            let lines = ((try? layer.read(StoreLayout.remapMarker)) ?? "").split(separator: "\n", omittingEmptySubsequences: false)
            let previous = lines.count >= 7 ? try Self.parseMappings(lines[5...6])
                : lines.count >= 3 ? try Self.parseMappings(lines[1...2]) : nil
            clearVolatileMarker(layer)
            if lines.contains(Substring(StoreLayout.remapCopyLine)) {
                // The copy is new with this remap: whether it was renamed in yet or not, it goes.
                try attempt("roll back remap: remove the new shifted copy", layer.path(StoreLayout.copyName(1))) { () throws(Errno) in
                    try layer.removeTreeIfPresent(StoreLayout.copyName(1))
                }
            }
            try shifter.rollBackShift(of: layer.diff, journal: journal)
            for copy in copies(of: layer) where layer.has(StoreLayout.journal(for: copy.lastComponent!.string)) {
                try shifter.rollBackShift(of: copy, journal: journalPath(layer, for: copy))
            }
            try syncFileSystem(of: layer.diff)
            if let previous { try recordIDMappings(previous, for: layer) }
            if let previous { try? grantTraversal(of: layer, to: previous) }
            result = .rolledBack
        }
        removeRemapFiles(layer)
        logger.notice(result == .rolledBack ? "rolled back an interrupted remap" : "removed the marker of a remap that changed nothing or had finished",
                      metadata: ["layer": "\(layer.id)"])
        return result
    }

    /// Removes the journal (and a journal being written), then the marker: in that order, so
    /// that a marker never outlives a journal that still matters. A journal that cannot be
    /// removed keeps its marker, so that the two stay together for `cleanup`.
    func removeRemapFiles(_ layer: LayerLocation) {
        let new = StoreLayout.journalBeingWritten
        var names = layer.copyNames.flatMap { copy in
            let journal = StoreLayout.journal(for: copy)
            return [journal, journal + new]
        }
        names += [StoreLayout.remapJournal, StoreLayout.remapJournal + new, StoreLayout.remapMarker]
        for name in names {
            do throws(Errno) {
                try layer.remove(name, missingOK: true)
            } catch {
                logger.warning("could not remove a remap file", metadata: ["path": "\(layer.path(name))", "error": "\(error)"])
                return
            }
        }
    }
}
