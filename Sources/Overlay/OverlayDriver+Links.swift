import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Where a layer lives.
struct LayerLocation: Sendable, Hashable {
    let id: LayerID
    /// The store root holding `l/` and the layer's directory.
    let store: FilePath
    /// Whether the store is a read-only additional image store.
    let readOnly: Bool

    /// `<store>/<id>`.
    var directory: FilePath { store.appending(id.rawValue) }
    var diff: FilePath { directory.appending("diff") }
}

extension OverlayDriver {
    /// The stores searched for layers, in order: the home, the image store, the additional image
    /// stores (read-only).
    var searchedStores: [(root: FilePath, readOnly: Bool)] {
        var stores: [(FilePath, Bool)] = [(home, false)]
        if let imageStoreRoot { stores.append((imageStoreRoot, false)) }
        for store in options.additionalImageStores { stores.append((store.appending("overlay"), true)) }
        return stores
    }

    /// Finds a layer in the searched stores.
    func find(_ id: LayerID) -> LayerLocation? {
        guard !Self.reservedNames.contains(id.rawValue) else { return nil }
        if let st = try? homeDirectory.status(at: FilePath(id.rawValue)), st.kind == .directory {
            return LayerLocation(id: id, store: home, readOnly: false)
        }
        for (root, readOnly) in searchedStores.dropFirst() {
            let dir = root.appending(id.rawValue)
            if let st = try? FileDescriptor.currentWorkingDirectory.status(at: dir), st.kind == .directory {
                return LayerLocation(id: id, store: root, readOnly: readOnly)
            }
        }
        return nil
    }

    /// Finds a layer or throws `notFound`.
    func locate(_ id: LayerID, operation: String) throws(StorageError) -> LayerLocation {
        guard let layer = find(id) else {
            throw StorageError(.notFound, operation, path: home.appending(id.rawValue).string,
                               reason: "layer \(id) does not exist")
        }
        return layer
    }

    /// The entries of the layer's `lower` file (`l/<short>`), parent first; empty for a base layer.
    func lowerEntries(of layer: LayerLocation) throws(StorageError) -> [Substring] {
        let path = layer.directory.appending("lower")
        do throws(Errno) {
            let text = try FileDescriptor.currentWorkingDirectory.readText(at: path)
            return text.split(separator: ":").map { $0.hasSuffix("\n") ? $0.dropLast() : $0 }.filter { !$0.isEmpty }
        } catch .noSuchFileOrDirectory {
            return []
        } catch {
            throw StorageError("read lower layers", path: path.string, errno: error)
        }
    }

    /// The absolute paths of the layer's lower directories, parent first: the short links, or
    /// (with `resolve`) the `diff` directories they point to.
    func lowerDirectories(of layer: LayerLocation, resolve: Bool = false) throws(StorageError) -> [FilePath] {
        try lowerPaths(of: layer, resolve: resolve).map { FilePath($0) }
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
        let entries = try lowerEntries(of: layer)
        let stores = searchedStores.map { $0.root.string }
        let ownStore = layer.store.string
        var result: [String] = []
        result.reserveCapacity(entries.count)
        for entry in entries {
            var store = ownStore
            if stores.count > 1 {
                // A parent may live in another store; take the first store that has the link.
                for root in stores where FileDescriptor.currentWorkingDirectory.exists(at: FilePath(root + "/" + entry)) {
                    store = root
                    break
                }
            }
            var path = store + "/" + entry
            if resolve {
                let target = try attempt("read short link", FilePath(path)) { () throws(Errno) in
                    try FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: FilePath(path))
                }
                if target.hasPrefix("../") {
                    path = store + "/" + target.dropFirst(3)
                } else if target.hasPrefix("/") {
                    path = target
                } else {
                    path = store + "/" + ShortLinks.directoryName + "/" + target
                }
            }
            result.append(path)
        }
        return result
    }

    /// The layer's short name, rebuilding its `link` file and `l/` entry when either is missing.
    func shortName(of layer: LayerLocation) throws(StorageError) -> String {
        let path = layer.directory.appending("link")
        if let name = FileDescriptor.currentWorkingDirectory.readShortName(at: path),
           FileDescriptor.currentWorkingDirectory.exists(at: layer.store.appending("l/\(name)")) {
            return name
        }
        guard !layer.readOnly else {
            throw StorageError(.corrupt, "read short link", path: path.string,
                               reason: "the layer's link is missing in a read-only store")
        }
        try repairLinks(in: layer.store)
        guard let name = FileDescriptor.currentWorkingDirectory.readShortName(at: path) else {
            throw StorageError(.corrupt, "read short link", path: path.string, reason: "the layer's link could not be rebuilt")
        }
        return name
    }

    /// Rebuilds missing `link` files and `l/` entries of every layer in a store (after a crash or
    /// a careless cleanup), and drops `l/` entries that point at nothing.
    ///
    /// A layer that lost its `link` file gets back the `l/` name that still points at it, else
    /// its derived name (which its children's `lower` files name, unless it collided).
    func repairLinks(in store: FilePath) throws(StorageError) {
        let cwd = FileDescriptor.currentWorkingDirectory
        let linkDirectory = store.appending(ShortLinks.directoryName)
        try attempt("repair short links", linkDirectory) { () throws(Errno) in
            try cwd.makeDirectoryIfMissing(at: linkDirectory)
            let links = try FileDescriptor.openDirectory(linkDirectory)
            defer { links.closeQuietly() }
            // Which short name points at which layer.
            var nameOf: [LayerID: String] = [:]
            for entry in try links.directoryEntries() {
                guard let target = try? links.readSymbolicLink(at: FilePath(entry.name)),
                      let id = ShortLinks.layer(fromTarget: target)
                else { continue }
                if cwd.exists(at: store.appending(id.rawValue)) {
                    nameOf[id] = entry.name
                } else {
                    try? links.remove(at: FilePath(entry.name))
                }
            }
            let storeDirectory = try FileDescriptor.openDirectory(store)
            defer { storeDirectory.closeQuietly() }
            for entry in try storeDirectory.directoryEntries() where entry.kind == .directory || entry.kind == .unknown {
                guard let id = try? LayerID(entry.name), entry.name != ShortLinks.directoryName,
                      entry.name != "staging", storeDirectory.exists(at: FilePath("\(entry.name)/diff"))
                else { continue }
                let linkFile = FilePath("\(entry.name)/link")
                var name = storeDirectory.readShortName(at: linkFile)
                if name == nil { name = nameOf[id] }
                if name == nil {
                    let derived = ShortLinks.derived(from: id)
                    let taken = (try? links.readSymbolicLink(at: FilePath(derived))).map { $0 != ShortLinks.target(for: id) } ?? false
                    name = taken ? ShortLinks.random() : derived
                }
                let short = name!
                if (try? storeDirectory.readText(at: linkFile)) != short {
                    try storeDirectory.writeText(short, at: linkFile)
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
