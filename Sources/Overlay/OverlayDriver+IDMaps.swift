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
    public func updateLayerIDMap(_ id: LayerID, toContainer: IDMappings, toHost: IDMappings,
                                 mountLabel: SELinuxContext?) throws(StorageError) {
        let operation = "remap layer \(id)"
        let layer = try locateLocked(id, operation: operation)
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
        guard toContainer != toHost else { return }
        // Shifting is not atomic: a marker naming this process says a shift is under way, so
        // that `check` can tell a layer whose shift was cut short (its owners are mixed).
        let marker = layer.directory.appending(Self.remappingFile)
        try attempt(operation, marker) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.writeText(
                Self.processStamp() + "\n" + Self.render(toContainer) + Self.render(toHost), at: marker)
        }
        if try lowerEntries(of: layer).isEmpty {
            let lock = try storeLock(exclusive: false)
            defer { withExtendedLifetime(lock) {} }
            let count = try counts.lock(id)
            defer { withExtendedLifetime(count) {} }
            guard count.count == 0 else {
                throw StorageError(.busy, operation, path: layer.directory.string, reason: "the layer is mounted")
            }
            try shifter.shift(layer.diff, from: toContainer, to: toHost, ignoreChownErrors: options.ignoreChownErrors)
        } else {
            let merged = try get(id, options: MountOptions(label: mountLabel, volatile: features.supportsVolatile))
            do throws(StorageError) {
                try shifter.shift(merged, from: toContainer, to: toHost, ignoreChownErrors: options.ignoreChownErrors)
            } catch {
                try? put(id)
                throw error
            }
            try syncFileSystem(of: layer.diff)
            try put(id)
        }
        try recordIDMappings(toHost, for: layer)
        try? FileDescriptor.currentWorkingDirectory.remove(at: marker)
    }

    /// The file in a layer's directory saying its owners are being shifted (by whom, from, to).
    static let remappingFile = "remapping"

    private func locateLocked(_ id: LayerID, operation: String) throws(StorageError) -> LayerLocation {
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        return try locate(id, operation: operation)
    }

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
        var mappings = IDMappings()
        for line in text.split(separator: "\n") {
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

    private func recordIDMappings(_ mappings: IDMappings, for layer: LayerLocation) throws(StorageError) {
        let path = layer.directory.appending(Self.idMappingsFile)
        let cwd = FileDescriptor.currentWorkingDirectory
        do throws(Errno) {
            if mappings.isIdentity {
                do throws(Errno) { try cwd.remove(at: path) } catch .noSuchFileOrDirectory {}
            } else {
                let temporary = layer.directory.appending(Self.idMappingsFile + ".new")
                try cwd.writeText(Self.render(mappings), at: temporary)
                try cwd.rename(temporary, to: path)
            }
        } catch {
            throw StorageError("record ID mappings", path: path.string, errno: error)
        }
    }

    private func syncFileSystem(of path: FilePath) throws(StorageError) {
        do throws(Errno) {
            let fd = try FileDescriptor.openDirectory(path)
            defer { fd.closeQuietly() }
            try fd.synchronizeFileSystem()
        } catch {
            throw StorageError("sync after remap", path: path.string, errno: error)
        }
    }
}
