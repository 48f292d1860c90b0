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
        FileDescriptor.currentWorkingDirectory.exists(at: layer.directory.appending(Self.remappingFile))
    }

    /// Whether the process the layer's remap marker names still runs.
    func remapIsRunning(_ layer: LayerLocation) -> Bool {
        guard let text = try? FileDescriptor.currentWorkingDirectory.readText(at: layer.directory.appending(Self.remappingFile))
        else { return false }
        return Self.stampIsAlive(text.split(separator: "\n").first.map(String.init) ?? "")
    }

    /// Rolls back the layer's remap if its process is gone; what `cleanup` and `check --repair`
    /// do. Takes the layer's lock; the caller holds the store lock exclusively. Returns `nil`
    /// when there was nothing to do (no marker, or its process still runs).
    func recoverInterruptedRemap(_ layer: LayerLocation) throws(StorageError) -> RemapRecovery? {
        guard hasRemapMarker(layer), !remapIsRunning(layer) else { return nil }
        let count = try counts.lock(layer.id)
        return try withExtendedLifetime(count) { () throws(StorageError) in
            try rollBackRemap(layer, count: count)
        }
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
        let cwd = FileDescriptor.currentWorkingDirectory
        let marker = layer.directory.appending(Self.remappingFile)
        let journal = layer.directory.appending(Self.remapJournalFile)
        let merged = mountPoint(of: layer)
        if isMounted(merged) { try unmount(merged) }
        if count.count != 0 { try count.set(0) }
        var result = RemapRecovery.markerRemoved
        // A copy still being built is never part of the layer.
        removeCopyStaging(layer)
        if cwd.exists(at: journal) {
            // Marker lines: stamp, from (uid, gid), to (uid, gid), the recorded mapping before
            // (uid, gid; absent in markers older than the journal, where it was `from`), and
            // `copy diff1` when the remap installs a new shifted copy.
            let lines = ((try? cwd.readText(at: marker)) ?? "").split(separator: "\n", omittingEmptySubsequences: false)
            let previous = lines.count >= 7 ? try Self.parseMappings(lines[5...6])
                : lines.count >= 3 ? try Self.parseMappings(lines[1...2]) : nil
            clearVolatileMarker(layer)
            if lines.contains(Substring(Self.copyMarkerLine)) {
                // The copy is new with this remap: whether it was renamed in yet or not, it goes.
                let copy = layer.directory.appending(Self.copyName(1))
                if cwd.exists(at: copy) {
                    try attempt("roll back remap: remove the new shifted copy", copy) { () throws(Errno) in try cwd.removeTree(at: copy) }
                }
            }
            try shifter.rollBackShift(of: layer.diff, journal: journal)
            for copy in copies(of: layer) where cwd.exists(at: journalPath(layer, for: copy)) {
                try shifter.rollBackShift(of: copy, journal: journalPath(layer, for: copy))
            }
            try syncFileSystem(of: layer.diff)
            if let previous { try recordIDMappings(previous, for: layer) }
            if let previous { try? grantTraversal(of: layer.directory, to: previous) }
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
        let cwd = FileDescriptor.currentWorkingDirectory
        var names = copies(of: layer).flatMap { copy in
            let journal = journalPath(layer, for: copy).lastComponent!.string
            return [journal, journal + ".new"]
        }
        names += [Self.remapJournalFile, Self.remapJournalFile + ".new", Self.remappingFile]
        for name in names {
            let path = layer.directory.appending(name)
            do throws(Errno) {
                try cwd.remove(at: path)
            } catch .noSuchFileOrDirectory {
            } catch {
                logger.warning("could not remove a remap file", metadata: ["path": "\(path)", "error": "\(error)"])
                return
            }
        }
    }
}
