import GraphDriver
import StrataSystem
import SystemPackage

/// How an operation works on a layer (see `OverlayDriver.withLayer`).
enum LayerAccess: Sendable {
    /// Reads the layer (or mounts a view of it) under the shared store lock.
    case read
    /// Mounts or unmounts it: also takes the layer's lock; a layer of a read-only store may be
    /// mounted too.
    case mount
    /// Changes its files: also takes the layer's lock, and refuses a layer of a read-only store.
    case write
}

extension OverlayDriver {
    /// The stores searched for layers, in order: the home, the image store, the additional
    /// image stores (read-only).
    var searchedStores: [StoreLayout] {
        var stores = [homeStore]
        if let imageStore { stores.append(imageStore) }
        return stores + additionalStores
    }

    /// The stores layers are made in: the home and the image store.
    var writableStores: [StoreLayout] {
        if let imageStore { return [homeStore, imageStore] }
        return [homeStore]
    }

    /// Finds a layer in the searched stores.
    func find(_ id: LayerID) -> LayerLocation? {
        guard !StoreLayout.reservedNames.contains(id.rawValue) else { return nil }
        for store in searchedStores {
            let layer = store.layer(id)
            if let st = try? layer.status(), st.kind == .directory { return layer }
        }
        return nil
    }

    /// Finds a layer or throws `notFound`.
    func locate(_ id: LayerID, operation: String) throws(StorageError) -> LayerLocation {
        guard let layer = find(id) else {
            throw StorageError(.notFound, operation, path: homeStore.layer(id).directory.string,
                               reason: "layer \(id) does not exist")
        }
        return layer
    }

    /// Throws `permissionDenied` for a layer of a read-only image store.
    func requireWritable(_ layer: LayerLocation, _ operation: String) throws(StorageError) {
        guard !layer.readOnly else {
            throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                               reason: "the layer is in a read-only image store")
        }
    }

    /// Runs `body` holding the store lock: shared for work on existing layers, exclusive to add
    /// or remove one (and for `cleanup` and `check`).
    func withStoreLock<T>(exclusive: Bool, _ body: () throws(StorageError) -> T) throws(StorageError) -> T {
        let path = homeStore.path(StoreLayout.lockFile)
        let lock = try attempt("lock store", path) { () throws(Errno) in
            try FileLock.acquire(FilePath(StoreLayout.lockFile), in: homeStore.directory(), path: path, exclusive: exclusive)
        }
        return try lock.holding(body)
    }

    /// The one way into an existing layer: under the shared store lock, finds it (or throws
    /// `notFound` for `operation`) and runs `body` on it. Only `.read` access takes no layer
    /// lock; for the others use the variant whose body gets the layer's mount count.
    func withLayer<T>(_ id: LayerID, _ access: LayerAccess = .read, operation: String,
                      _ body: (LayerLocation) throws(StorageError) -> T) throws(StorageError) -> T {
        try withStoreLock(exclusive: false) { () throws(StorageError) in
            let layer = try locate(id, operation: operation)
            if access == .write { try requireWritable(layer, operation) }
            return try body(layer)
        }
    }

    /// `withLayer` that also holds the layer's lock (for `.mount` and `.write` access) and hands
    /// `body` the layer's mount count.
    func withLayer<T>(_ id: LayerID, _ access: LayerAccess, operation: String,
                      _ body: (LayerLocation, LockedMountCount) throws(StorageError) -> T) throws(StorageError) -> T {
        try withLayer(id, access, operation: operation) { (layer) throws(StorageError) in
            try counts.withLock(id) { (count) throws(StorageError) in try body(layer, count) }
        }
    }
}
