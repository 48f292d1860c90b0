import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver {
    /// Whether `get` can present these mappings without rewriting files: the kernel stacks
    /// idmapped lower layers here and the injected shifter can make idmapped mounts.
    public func supportsShifting(uidMap: [IDMap], gidMap: [IDMap]) -> Bool {
        features.supportsIdmappedLowers && shifter.supportsIdmappedMounts(IDMappings(uidMap: uidMap, gidMap: gidMap))
    }

    /// The ID mapping the layer's files are owned under (as created or last remapped).
    public func idMappings(of id: LayerID) throws(StorageError) -> IDMappings {
        let layer = try locate(id, operation: "read ID mappings of layer \(id)")
        return try recordedMappings(of: layer)
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

    /// Records the mapping the layer's files are owned under (removing `idmaps` for the identity).
    func recordIDMappings(_ mappings: IDMappings, for layer: LayerLocation) throws(StorageError) {
        try attempt("record ID mappings", layer.path(StoreLayout.idMappings)) { () throws(Errno) in
            if mappings.isIdentity {
                try layer.remove(StoreLayout.idMappings, missingOK: true)
            } else {
                // `write` replaces the file atomically (through a `.idmaps.*.tmp` name).
                try layer.write(Self.render(mappings), to: StoreLayout.idMappings)
            }
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
