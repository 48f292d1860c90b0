import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension OverlayDriver {
    /// Creates a read-only layer on `parent` (a base layer when `nil`). Size and inode limits
    /// are refused: they apply to read-write layers only.
    public func create(_ id: LayerID, parent: LayerID?, options: CreateOptions) throws(StorageError) {
        try createLayer(id, parent: parent, options: options, readWrite: false, template: nil)
    }

    /// Creates a writable layer on `parent`, with the driver's default limits unless `options`
    /// sets its own.
    public func createReadWrite(_ id: LayerID, parent: LayerID?, options: CreateOptions) throws(StorageError) {
        try createLayer(id, parent: parent, options: options, readWrite: true, template: nil)
    }

    /// Creates a layer on `parent` holding a copy of `template`'s own files. `template` must
    /// sit on the same parent, so that its whiteouts mean the same in the copy.
    public func createFromTemplate(_ id: LayerID, template: LayerID, parent: LayerID?, options: CreateOptions,
                                   readWrite: Bool) throws(StorageError) {
        let source = try locate(template, operation: "create layer \(id) from template")
        guard try isDirectParent(parent, of: source) else {
            throw StorageError(.invalidArgument, "create layer \(id) from template", path: source.directory.string,
                               reason: "template \(template) does not sit on \(parent?.rawValue ?? "no parent")")
        }
        try createLayer(id, parent: parent, options: options, readWrite: readWrite, template: source)
    }

    /// The mode of a base layer's root (its `diff`), as containers/storage makes it; a child's
    /// root takes its parent's mode.
    static let baseLayerRootMode = FilePermissions(rawValue: 0o555)

    func createLayer(_ id: LayerID, parent: LayerID?, options: CreateOptions, readWrite: Bool,
                     template: LayerLocation?, additionalLayer: FilePath? = nil) throws(StorageError) {
        let operation = "create layer \(id)"
        guard !StoreLayout.reservedNames.contains(id.rawValue) else {
            throw StorageError(.invalidArgument, operation, reason: "'\(id)' is a name the driver uses for itself")
        }
        var limits = QuotaLimits.none
        if readWrite {
            limits = self.options.quota
            if let size = options.quota.size { limits.size = size }
            if let inodes = options.quota.inodes { limits.inodes = inodes }
        } else if !options.quota.isEmpty {
            throw StorageError(.invalidArgument, operation, reason: "size and inode limits apply only to read-write layers")
        }
        let store = readWrite ? homeStore : (imageStore ?? homeStore)
        try withStoreLock(exclusive: true) { () throws(StorageError) in
            if let existing = find(id) {
                throw StorageError(.alreadyExists, operation, path: existing.directory.string, reason: "layer \(id) already exists")
            }
            let lowerText = try lowerText(forChildOf: parent, readWrite: readWrite, operation: operation)
            var diffOwner = options.idMappings.rootPair ?? (0, 0)
            var diffMode = Self.baseLayerRootMode
            if let parent = lowerText?.parent, let st = try? parent.status(StoreLayout.diff) {
                diffMode = st.permissions
                if options.idMappings.isIdentity { diffOwner = (st.userID.rawValue, st.groupID.rawValue) }
            }
            var short = ShortLinks.derived(from: id)
            if store.exists(StoreLayout.shortLinkName(short)) { short = ShortLinks.random() }
            let stagingName = StoreLayout.stagingName(.create, id)
            let staging = store.path(StoreLayout.staging).appending(stagingName)
            do throws(StorageError) {
                try attempt(operation, staging) { () throws(Errno) in
                    let dir = try store.directory().openDirectory(at: FilePath(try store.makeStagingDirectory(stagingName)))
                    defer { dir.closeQuietly() }
                    if let additionalLayer {
                        // The store's files are the layer's own; the layer is only mounted read-only.
                        try dir.makeSymbolicLink(at: FilePath(StoreLayout.diff),
                                                 target: additionalLayer.appending(AdditionalLayerLayout.contents).string)
                        try dir.writeText(additionalLayer.string, at: FilePath(StoreLayout.additionalLayer))
                    } else {
                        let diff = FilePath(StoreLayout.diff)
                        try dir.makeDirectory(at: diff, permissions: diffMode)
                        try dir.changeMode(at: diff, permissions: diffMode)  // past the umask
                        try dir.changeOwner(at: diff, user: UserID(rawValue: diffOwner.0), group: GroupID(rawValue: diffOwner.1))
                    }
                    try dir.makeDirectory(at: FilePath(StoreLayout.work), permissions: .init(rawValue: 0o700))
                    try dir.makeDirectory(at: FilePath(StoreLayout.merged), permissions: .init(rawValue: 0o700))
                    try dir.writeText(short, at: FilePath(StoreLayout.link))
                    if !options.idMappings.isIdentity {
                        try dir.writeText(Self.render(options.idMappings), at: FilePath(StoreLayout.idMappings))
                    }
                    if options.incomplete {
                        try dir.writeText(ProcessStamp.current.description, at: FilePath(StoreLayout.incomplete))
                    }
                    if let lowerText {
                        try dir.writeText(lowerText.text, at: FilePath(StoreLayout.lower))
                    } else {
                        try dir.makeDirectory(at: FilePath(StoreLayout.empty), permissions: .init(rawValue: 0o700))
                    }
                }
                if !options.idMappings.isIdentity {
                    try grantTraversal(of: FilePath(StoreLayout.staging + "/" + stagingName), in: store, to: options.idMappings)
                }
                if !limits.isEmpty {
                    try quota.setLimits(limits, on: staging.appending(StoreLayout.diff))
                }
                if let template {
                    try TreeCopy.copyContents(of: template.diff, to: staging.appending(StoreLayout.diff))
                }
                if let label = options.mountLabel, labeler.isEnabled, additionalLayer == nil {
                    try labeler.relabel(staging.appending(StoreLayout.diff), label: label, shared: false)
                }
                try attempt(operation, store.layer(id).directory) { () throws(Errno) in
                    try store.directory().rename(FilePath(StoreLayout.staging + "/" + stagingName), to: FilePath(id.rawValue),
                                                 flags: .noReplace)
                }
            } catch {
                // The quota project set above goes with the directory.
                try? deleteDiscarded(staging)
                throw error
            }
            let link = StoreLayout.shortLinkName(short)
            do throws(StorageError) {
                try attempt("make short link", store.path(link)) { () throws(Errno) in
                    try store.directory().makeSymbolicLink(at: FilePath(link), target: ShortLinks.target(for: id))
                }
            } catch {
                try? discardLayer(id, in: store)
                throw error
            }
        }
        logger.debug("created layer", metadata: ["id": "\(id)", "parent": "\(parent?.rawValue ?? "")"])
    }

    /// The `lower` text of a new layer on `parent` (`nil` for a base layer), with the parent;
    /// refuses a stack deeper than overlayfs mounts. The caller holds the store lock.
    private func lowerText(forChildOf parent: LayerID?, readWrite: Bool,
                           operation: String) throws(StorageError) -> (text: String, parent: LayerLocation)? {
        guard let parent else { return nil }
        let parentLayer = try locate(parent, operation: operation)
        let parentShort = try shortName(of: parentLayer)
        let parentLowers = try lowerEntries(of: parentLayer)
        // Mounted, a writable layer's own diff is the upper directory; a read-only layer's
        // is one more lower. Shifted copies (`diffN`) are lower layers of every mount of the
        // stack too.
        let depth = try parentStack(of: parentLayer).count + copies(of: parentLayer).count + 2
        guard depth - (readWrite ? 1 : 0) <= Self.maximumLowerLayers else {
            throw StorageError(.invalidArgument, operation, reason:
                "the layer would be \(depth) layers deep; overlayfs stacks at most \(Self.maximumLowerLayers) lower layers "
                    + (readWrite ? "under a writable layer" : "(a writable layer may sit on \(Self.maximumLowerLayers))"))
        }
        return (([StoreLayout.shortLinkName(parentShort)] + parentLowers.map(String.init)).joined(separator: ":"), parentLayer)
    }

    /// The layer's parent: the layer its first `lower` entry links to (`nil` for a base layer).
    /// Only that one short link is resolved, however deep the layer.
    func parentLayer(of layer: LayerLocation) throws(StorageError) -> LayerID? {
        guard let first = try lowerEntries(of: layer).first.map(String.init) else { return nil }
        let store = searchedStores.first { $0.exists(first) } ?? layer.store
        let target: String
        do throws(Errno) {
            target = try store.readLink(first)
        } catch .noSuchFileOrDirectory where !layer.readOnly {
            // A lost short link: rebuild the store's links and look again.
            try repairLinks(in: layer.store)
            target = try attempt("read short link", store.path(first)) { () throws(Errno) in try store.readLink(first) }
        } catch {
            throw StorageError("read short link", path: store.path(first).string, errno: error)
        }
        guard let parent = ShortLinks.layer(fromTarget: target) else {
            throw StorageError(.corrupt, "read short link", path: store.path(first).string, reason: "'\(target)' does not name a layer")
        }
        return parent
    }

    /// Whether `parent` is the layer's parent: its short link is the first in the layer's
    /// `lower` file (or both are absent).
    func isDirectParent(_ parent: LayerID?, of layer: LayerLocation) throws(StorageError) -> Bool {
        try parentLayer(of: layer) == parent
    }

    /// Removes a layer: unmounts it (even when others still count a mount of it), then takes it
    /// out of the store. Removing a missing layer succeeds.
    public func remove(_ id: LayerID) throws(StorageError) {
        let operation = "remove layer \(id)"
        // Under the locks the layer only leaves the store (a rename); its files are deleted after.
        let graveyard: FilePath? = try withStoreLock(exclusive: true) { () throws(StorageError) in
            guard let layer = find(id) else { return nil }
            try requireWritable(layer, operation)
            if let child = try childLayer(of: layer) {
                throw StorageError(.busy, operation, path: layer.directory.string,
                                   reason: "layer \(child) stacks on it; remove that layer first")
            }
            return try counts.withLock(id) { (_) throws(StorageError) in
                let merged = mountPoint(of: layer)
                if isMounted(merged) {
                    try unmount(merged)
                }
                // Its short link and count go with it, while the store lock keeps a new layer of
                // the same ID from making that link again.
                return try attempt(operation, layer.directory) { () throws(Errno) in
                    try retireLayer(id, in: layer.store)
                }
            }
        }
        guard let graveyard else { return }
        // The layer is gone from the store already; what cannot be deleted now, cleanup deletes.
        do throws(Errno) { try deleteDiscarded(graveyard) } catch {
            logger.warning("could not delete a removed layer's files", metadata: ["path": "\(graveyard)", "error": "\(error)"])
        }
        logger.debug("removed layer", metadata: ["id": "\(id)"])
    }

    /// A layer of a writable store whose `lower` chain names this layer's short link, if any
    /// (removing the layer would break it). The caller holds the store lock.
    func childLayer(of layer: LayerLocation) throws(StorageError) -> LayerID? {
        guard let short = layer.shortName else { return nil }
        let entry = StoreLayout.shortLinkName(short)
        for store in writableStores {
            for (id, _) in (try? store.layerEntries()) ?? [] where id != layer.id {
                if store.layer(id).firstLowerEntry == entry { return id }
            }
        }
        return nil
    }

    /// Whether the layer exists in the home or a searched store.
    public func exists(_ id: LayerID) -> Bool { find(id) != nil }

    /// The layers of the home and the image store.
    public func listLayers() throws(StorageError) -> [LayerID] {
        var result: [LayerID] = []
        for store in writableStores {
            try attempt("list layers", store.root) { () throws(Errno) in
                for (id, _) in try store.layerEntries(directoriesOnly: false) where store.layer(id).has(StoreLayout.diff) {
                    result.append(id)
                }
            }
        }
        return result.sorted()
    }

    /// What a writable layer holds: from its quota when it has one, else by walking `diff`
    /// (hard links counted once).
    public func readWriteDiskUsage(_ id: LayerID) throws(StorageError) -> DiskUsage {
        let layer = try locate(id, operation: "measure layer \(id)")
        if let usage = try quota.usage(of: layer.diff) { return usage }
        return try attempt("measure layer \(id)", layer.diff) { () throws(Errno) in
            let dir = try layer.openDirectory(StoreLayout.diff)
            defer { dir.closeQuietly() }
            return try TreeSize.measure(dir)
        }
    }
}
