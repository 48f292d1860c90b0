import GraphDriver
import StrataSystem
import SystemPackage

/// One lower directory of a mount: a layer's `diff` or one of its shifted copies (`diffN`).
struct StackDirectory: Sendable, Hashable {
    /// The path as it goes into the mount data.
    var path: String
    /// The same directory relative to the store root.
    var relativePath: String
    /// The store of the layer it belongs to.
    var store: StoreLayout
    /// The directory of that layer relative to the store root (`l/<short>/..` for a parent:
    /// resolved by the kernel, one lookup, no readlink).
    var layerDirectory: String
    /// Whether it is a shifted copy (`diffN`) of the layers below it: every name of theirs is in
    /// it, with its owners, and metacopy files whose data is below.
    var isCopy: Bool

    /// The layer directory's absolute path.
    var layerPath: String { store.pathString(layerDirectory) }
}

extension OverlayDriver {
    /// The layer's own shifted copies (`diff1`…), in mount order.
    func copies(of layer: LayerLocation) -> [FilePath] {
        layer.copyNames.map { layer.path($0) }
    }

    /// The lower directories a mount of the layer stacks below its own directories, parent
    /// first: each parent's `diff` followed by that parent's shifted copies (as containers/storage
    /// adds a lower layer's `diffN` right after it).
    func parentStack(of layer: LayerLocation) throws(StorageError) -> [StackDirectory] {
        let links = try lowerLinks(of: layer)
        var result: [StackDirectory] = []
        result.reserveCapacity(links.count)
        for (store, entry) in links {
            let directory = String(entry) + "/.."
            result.append(StackDirectory(path: store.pathString(entry), relativePath: String(entry), store: store,
                                         layerDirectory: directory, isCopy: false))
            for copy in store.copyNames(under: directory) {
                let resolved = try resolvedCopy(copy, link: String(entry), in: store)
                result.append(StackDirectory(path: store.pathString(resolved), relativePath: resolved, store: store,
                                             layerDirectory: directory, isCopy: true))
            }
        }
        return result
    }

    /// A copy's name relative to the store with the parent's short link resolved (`<id>/diffN`):
    /// mount data holds no `..`.
    private func resolvedCopy(_ copy: String, link: String, in store: StoreLayout) throws(StorageError) -> String {
        let target = try attempt("read short link", store.path(link)) { () throws(Errno) in try store.readLink(link) }
        guard let layer = ShortLinks.layer(fromTarget: target) else {
            throw StorageError(.corrupt, "read short link", path: store.pathString(link), reason: "'\(target)' does not name a layer")
        }
        return store.layer(layer).relative(copy).string
    }

    /// The ID mapping recorded in a layer directory's `idmaps` (the identity when absent); the
    /// directory is named relative to its store's root.
    func recordedMappings(in store: StoreLayout, directory: String) throws(StorageError) -> IDMappings {
        let relative = directory + "/" + StoreLayout.idMappings
        let text: String
        do throws(Errno) {
            text = try store.directory().readText(at: FilePath(relative))
        } catch .noSuchFileOrDirectory {
            return .identity
        } catch {
            throw StorageError("read ID mappings", path: store.pathString(relative), errno: error)
        }
        return try Self.parseMappings(text.split(separator: "\n"))
    }

    /// The ID mapping recorded in the layer's `idmaps`.
    func recordedMappings(of layer: LayerLocation) throws(StorageError) -> IDMappings {
        try recordedMappings(in: layer.store, directory: layer.id.rawValue)
    }

    /// The mapping an idmapped mount needs so that files owned on disk under `from` appear owned
    /// under `to`: container ID `c`, stored as `from(c)`, is shown as `to(c)`. Container IDs
    /// that either mapping lacks are left out (they show as the overflow ID). As mappings, the
    /// result's "container" side is the on-disk ID and its "host" side the shown one.
    static func composedMapping(from: IDMappings, to: IDMappings) -> IDMappings {
        IDMappings(uidMap: compose(from.uidMap, to.uidMap), gidMap: compose(from.gidMap, to.gidMap))
    }

    /// `compose` for one kind of ID; an empty map is the identity.
    static func compose(_ from: [IDMap], _ to: [IDMap]) -> [IDMap] {
        let whole = [IDMap(containerID: 0, hostID: 0, size: UInt32.max)]
        let source = from.isEmpty ? whole : from
        let target = to.isEmpty ? whole : to
        var result: [IDMap] = []
        for s in source {
            for t in target {
                let low = max(UInt64(s.containerID), UInt64(t.containerID))
                let high = min(UInt64(s.containerID) + UInt64(s.size), UInt64(t.containerID) + UInt64(t.size))
                guard low < high else { continue }
                result.append(IDMap(containerID: UInt32(UInt64(s.hostID) + low - UInt64(s.containerID)),
                                    hostID: UInt32(UInt64(t.hostID) + low - UInt64(t.containerID)),
                                    size: UInt32(high - low)))
            }
        }
        return result.sorted { $0.containerID < $1.containerID }
    }
}
