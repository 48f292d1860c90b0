import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// The entries of the layer's `lower` file (`l/<short>`), parent first; empty for a base layer.
    func lowerEntries(of layer: LayerLocation) throws(StorageError) -> [Substring] {
        try attempt("read lower layers", layer.path(StoreLayout.lower)) { () throws(Errno) in try layer.lowerEntries() }
    }

    /// The absolute paths of the layer's lower directories, parent first: the short links, or
    /// (with `resolve`) the `diff` directories they point to.
    func lowerDirectories(of layer: LayerLocation, resolve: Bool = false) throws(StorageError) -> [FilePath] {
        try lowerPaths(of: layer, resolve: resolve).map { FilePath($0) }
    }

    /// The store holding each `lower` entry's short link: a parent may live in another store,
    /// so the first store that has the link.
    func lowerLinks(of layer: LayerLocation) throws(StorageError) -> [(store: StoreLayout, entry: Substring)] {
        let entries = try lowerEntries(of: layer)
        let stores = searchedStores
        return entries.map { (entry) -> (store: StoreLayout, entry: Substring) in
            guard stores.count > 1 else { return (layer.store, entry) }
            return (stores.first { $0.exists(String(entry)) } ?? layer.store, entry)
        }
    }

    /// `lowerDirectories` as strings: built by concatenation, since this runs for every layer of
    /// a mount (up to 500) and needs no path parsing. With `includingCopies`, each parent's
    /// shifted copies (`diff1`…, resolved) follow its `diff`, as a mount stacks them.
    func lowerPaths(of layer: LayerLocation, resolve: Bool = false, includingCopies: Bool = true) throws(StorageError) -> [String] {
        if includingCopies {
            let stack = try parentStack(of: layer)
            guard resolve else { return stack.map(\.path) }
            let resolved = try lowerPaths(of: layer, resolve: true, includingCopies: false)
            var index = -1
            return stack.map { entry in
                if entry.isCopy { return entry.path }
                index += 1
                return resolved[index]
            }
        }
        let links = try lowerLinks(of: layer)
        var result: [String] = []
        result.reserveCapacity(links.count)
        for (store, entry) in links {
            guard resolve else {
                result.append(store.pathString(entry))
                continue
            }
            let target = try attempt("read short link", store.path(String(entry))) { () throws(Errno) in
                try store.readLink(String(entry))
            }
            if target.hasPrefix("../") {
                result.append(store.pathString(target.dropFirst(3)))
            } else if target.hasPrefix("/") {
                result.append(target)
            } else {
                result.append(store.pathString(StoreLayout.shortLinkName(target)))
            }
        }
        return result
    }

    /// The layer's short name, rebuilding its `link` file and `l/` entry when either is missing.
    func shortName(of layer: LayerLocation) throws(StorageError) -> String {
        let path = layer.path(StoreLayout.link)
        if let name = layer.shortName, layer.store.exists(StoreLayout.shortLinkName(name)) {
            return name
        }
        guard !layer.readOnly else {
            throw StorageError(.corrupt, "read short link", path: path.string,
                               reason: "the layer's link is missing in a read-only store")
        }
        try repairLinks(in: layer.store)
        guard let name = layer.shortName else {
            throw StorageError(.corrupt, "read short link", path: path.string, reason: "the layer's link could not be rebuilt")
        }
        return name
    }

    /// Rebuilds missing `link` files and `l/` entries of every layer in a store (after a crash or
    /// a careless cleanup), and drops `l/` entries that point at nothing.
    ///
    /// A layer that lost its `link` file gets back the `l/` name that still points at it, else
    /// its derived name (which its children's `lower` files name, unless it collided).
    func repairLinks(in store: StoreLayout) throws(StorageError) {
        try attempt("repair short links", store.path(StoreLayout.linkDirectory)) { () throws(Errno) in
            let storeDirectory = try store.directory()
            try storeDirectory.makeDirectoryIfMissing(at: FilePath(StoreLayout.linkDirectory))
            let links = try storeDirectory.openDirectory(at: FilePath(StoreLayout.linkDirectory))
            defer { links.closeQuietly() }
            // Which short name points at which layer.
            var nameOf: [LayerID: String] = [:]
            for entry in try links.directoryEntries() {
                guard let target = try? links.readSymbolicLink(at: FilePath(entry.name)),
                      let id = ShortLinks.layer(fromTarget: target)
                else { continue }
                if storeDirectory.exists(at: FilePath(id.rawValue)) {
                    nameOf[id] = entry.name
                } else {
                    try? links.remove(at: FilePath(entry.name))
                }
            }
            for (id, _) in try store.layerEntries(directoriesOnly: false) {
                let layer = store.layer(id)
                guard layer.has(StoreLayout.diff) else { continue }
                var name = layer.shortName
                if name == nil { name = nameOf[id] }
                if name == nil {
                    let derived = ShortLinks.derived(from: id)
                    let taken = (try? links.readSymbolicLink(at: FilePath(derived))).map { $0 != ShortLinks.target(for: id) } ?? false
                    name = taken ? ShortLinks.random() : derived
                }
                let short = name!
                if (try? layer.read(StoreLayout.link)) != short {
                    try layer.write(short, to: StoreLayout.link)
                }
                if nameOf[id] != short {
                    do throws(Errno) {
                        try links.makeSymbolicLink(at: FilePath(short), target: ShortLinks.target(for: id))
                    } catch .fileExists {
                        try links.remove(at: FilePath(short))
                        try links.makeSymbolicLink(at: FilePath(short), target: ShortLinks.target(for: id))
                    }
                }
            }
        }
    }
}
