import GraphDriver
import StrataSystem
import SystemPackage

extension OverlayDriver: GraphDriver, DiffDriver, StagedApplyDriver, AdditionalLayerStoreDriver, IDMappingDriver {
    /// Whether `get` can present these mappings without rewriting files: the kernel stacks
    /// idmapped lower layers here and the injected shifter can make idmapped mounts.
    public func supportsShifting(uidMap: [IDMap], gidMap: [IDMap]) -> Bool {
        features.supportsIdmappedLowers && shifter.supportsIdmappedMounts(IDMappings(uidMap: uidMap, gidMap: gidMap))
    }

    /// Rewrites the owners of the layer's own files from `toHost`'s view to `toContainer`'s,
    /// through the injected shifter (`NoShifting` refuses any real change).
    public func updateLayerIDMap(_ id: LayerID, toContainer: IDMappings, toHost: IDMappings,
                                 mountLabel: SELinuxContext?) throws(StorageError) {
        let lock = try storeLock(exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let layer = try locate(id, operation: "remap layer \(id)")
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, "remap layer \(id)", path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
        let count = try counts.lock(id)
        defer { withExtendedLifetime(count) {} }
        try shifter.shift(layer.diff, from: toContainer, to: toHost, ignoreChownErrors: options.ignoreChownErrors)
    }
}
