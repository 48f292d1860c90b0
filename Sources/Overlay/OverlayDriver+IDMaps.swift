import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver: GraphDriver, DiffDriver, StagedApplyDriver, AdditionalLayerStoreDriver, IDMappingDriver {
    /// Whether `get` can present these mappings without rewriting files: the kernel stacks
    /// idmapped lower layers here and the injected shifter can make idmapped mounts.
    public func supportsShifting(uidMap: [IDMap], gidMap: [IDMap]) -> Bool {
        features.supportsIdmappedLowers && shifter.supportsIdmappedMounts(IDMappings(uidMap: uidMap, gidMap: gidMap))
    }

    /// Rewrites the layer's files from the mapping they are owned under (`toContainer`) to a new
    /// one (`toHost`), and records the new mapping.
    ///
    /// A layer with no parent is shifted in place, walking its `diff` (the same result as the
    /// reference driver's mount-and-chown, without a mount or a copy). A layer with parents needs
    /// the parents' files to appear with the new owners too, so, as containers/storage does, the
    /// layer is mounted and its whole merged tree shifted, which copies lower files up into its
    /// `diff` — but the mount is `volatile` (no fsync per copied-up file) and the walk parallel;
    /// the filesystem is synced once at the end.
    ///
    /// All or nothing: the shift is planned first, and before any file changes, the layer's
    /// directory gets a `remapping` marker (this process, the mappings) and a `remapping.undo`
    /// journal (every value the shift replaces; for a layer with parents also the names `diff`
    /// held). A failure puts the layer back and rethrows; after a crash, `cleanup`,
    /// `check(repair: true)` or the next `get` of the layer rolls it back from the journal
    /// (removing what was copied up). The layer must not be mounted.
    public func updateLayerIDMap(_ id: LayerID, toContainer: IDMappings, toHost: IDMappings,
                                 mountLabel: SELinuxContext?) throws(StorageError) {
        let operation = "remap layer \(id)"
        // The store lock (shared) keeps `cleanup` and `check` from rolling back a remap in
        // flight; the layer's lock keeps mounts, applies and removes of it away until it is done.
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: operation)
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
        guard toContainer != toHost else { return }
        let count = try counts.lock(id)
        defer { withExtendedLifetime(count) {} }
        guard count.count == 0 else {
            throw StorageError(.busy, operation, path: layer.directory.string, reason: "the layer is mounted")
        }
        // A remap of this layer that a crash cut short is rolled back first: its journal is the
        // only record of what its files were.
        if hasRemapMarker(layer) {
            guard !remapIsRunning(layer) else {
                throw StorageError(.busy, operation, path: layer.directory.string, reason: "another process is remapping the layer")
            }
            _ = try rollBackRemap(layer, count: count)
        }
        removeRemapFiles(layer)  // a journal left without its marker belongs to no remap
        let marker = layer.directory.appending(Self.remappingFile)
        let previous = try idMappings(of: id)
        try attempt(operation, marker) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.writeText(
                Self.processStamp() + "\n" + Self.render(toContainer) + Self.render(toHost) + Self.render(previous), at: marker)
        }
        if try lowerEntries(of: layer).isEmpty {
            try shiftInPlace(layer, from: toContainer, to: toHost)
        } else {
            try shiftThroughMount(layer, count: count, from: toContainer, to: toHost, mountLabel: mountLabel)
        }
        // Done: the journal goes first, so that a marker without a journal always means that the
        // layer's owners and `idmaps` agree (nothing changed yet, or everything recorded).
        removeRemapFiles(layer)
    }

    /// A base layer: its `diff` is shifted in place. On a failure the plan's undo is applied
    /// at once; if even that fails, the journal and marker stay for `cleanup`.
    private func shiftInPlace(_ layer: LayerLocation, from: IDMappings, to: IDMappings) throws(StorageError) {
        let prepared: any PreparedOwnershipShift
        do throws(StorageError) {
            prepared = try shifter.prepareShift(layer.diff, from: from, to: to, ignoreChownErrors: options.ignoreChownErrors)
            try prepared.writeUndoJournal(to: layer.directory.appending(Self.remapJournalFile), recordingNamesIn: nil)
        } catch {
            removeRemapFiles(layer)  // nothing was changed
            throw error
        }
        do throws(StorageError) {
            try prepared.apply()
            try syncFileSystem(of: layer.diff)
            try recordIDMappings(to, for: layer)
        } catch {
            do throws(StorageError) {
                try prepared.undo()
                try syncFileSystem(of: layer.diff)
            } catch let undoError {
                logger.error("could not undo a failed remap; strata cleanup rolls it back",
                             metadata: ["layer": "\(layer.id)", "error": "\(undoError)"])
                throw error
            }
            removeRemapFiles(layer)
            throw error
        }
    }

    /// A layer with parents: shifted through a volatile mount of its merged tree. On a failure
    /// the mount is released and the layer rolled back from the journal, as after a crash.
    private func shiftThroughMount(_ layer: LayerLocation, count: LockedMountCount, from: IDMappings, to: IDMappings,
                                   mountLabel: SELinuxContext?) throws(StorageError) {
        // The prepared shift holds the mount's root open: it is let go before every unmount,
        // which would otherwise find the mount busy.
        var prepared: (any PreparedOwnershipShift)?
        do throws(StorageError) {
            let merged = try mountLocked(layer, count: count, options: MountOptions(label: mountLabel, volatile: features.supportsVolatile))
            let planned = try shifter.prepareShift(merged, from: from, to: to, ignoreChownErrors: options.ignoreChownErrors)
            prepared = planned
            try planned.writeUndoJournal(to: layer.directory.appending(Self.remapJournalFile), recordingNamesIn: layer.diff)
        } catch {
            // Nothing was changed: the mount (if made) goes, and the marker.
            prepared = nil
            try? unmountLocked(layer, count: count)
            removeRemapFiles(layer)
            throw error
        }
        do throws(StorageError) {
            try prepared?.apply()
            prepared = nil
            try syncFileSystem(of: layer.diff)
            try unmountLocked(layer, count: count)
            try recordIDMappings(to, for: layer)
        } catch {
            prepared = nil
            do throws(StorageError) {
                _ = try rollBackRemap(layer, count: count)
            } catch let undoError {
                logger.error("could not undo a failed remap; strata cleanup rolls it back",
                             metadata: ["layer": "\(layer.id)", "error": "\(undoError)"])
            }
            throw error
        }
    }

    /// The file in a layer's directory saying its owners are being shifted: by whom (process
    /// stamp), from, to, and the mapping `idmaps` recorded before.
    static let remappingFile = "remapping"

    /// The undo journal of a remap, beside its marker: what rolls the layer back.
    static let remapJournalFile = "remapping.undo"

    /// The file in a layer's directory naming the ID mapping its files are owned under (absent
    /// for the identity).
    static let idMappingsFile = "idmaps"

    /// The ID mapping the layer's files are owned under (as created or last remapped).
    public func idMappings(of id: LayerID) throws(StorageError) -> IDMappings {
        let layer = try locate(id, operation: "read ID mappings of layer \(id)")
        let path = layer.directory.appending(Self.idMappingsFile)
        let text: String
        do throws(Errno) {
            text = try FileDescriptor.currentWorkingDirectory.readText(at: path)
        } catch .noSuchFileOrDirectory {
            return .identity
        } catch {
            throw StorageError("read ID mappings", path: path.string, errno: error)
        }
        return try Self.parseMappings(text.split(separator: "\n"))
    }

    /// Mappings from `uid …` and `gid …` lines (as `render` writes them).
    static func parseMappings(_ lines: some Sequence<Substring>) throws(StorageError) -> IDMappings {
        var mappings = IDMappings()
        for line in lines {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let ranges = try parts[1].split(separator: ",").map { (range) throws(StorageError) in try IDMap(parsing: range) }
            if parts[0] == "uid" { mappings.uidMap = ranges } else if parts[0] == "gid" { mappings.gidMap = ranges }
        }
        return mappings
    }

    static func render(_ mappings: IDMappings) -> String {
        "uid \(mappings.uidMap.map(\.description).joined(separator: ","))\n"
            + "gid \(mappings.gidMap.map(\.description).joined(separator: ","))\n"
    }

    func recordIDMappings(_ mappings: IDMappings, for layer: LayerLocation) throws(StorageError) {
        let path = layer.directory.appending(Self.idMappingsFile)
        let cwd = FileDescriptor.currentWorkingDirectory
        do throws(Errno) {
            if mappings.isIdentity {
                do throws(Errno) { try cwd.remove(at: path) } catch .noSuchFileOrDirectory {}
            } else {
                // `writeText` replaces the file atomically (through a `.idmaps.*.tmp` name).
                try cwd.writeText(Self.render(mappings), at: path)
            }
        } catch {
            throw StorageError("record ID mappings", path: path.string, errno: error)
        }
    }

    func syncFileSystem(of path: FilePath) throws(StorageError) {
        do throws(Errno) {
            let fd = try FileDescriptor.openDirectory(path)
            defer { fd.closeQuietly() }
            try fd.synchronizeFileSystem()
        } catch {
            throw StorageError("sync after remap", path: path.string, errno: error)
        }
    }
}
