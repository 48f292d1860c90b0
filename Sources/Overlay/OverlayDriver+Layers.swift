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

    /// Names the driver keeps for itself in a store.
    static let reservedNames: Set<String> = [ShortLinks.directoryName, "staging"]

    func createLayer(_ id: LayerID, parent: LayerID?, options: CreateOptions, readWrite: Bool,
                     template: LayerLocation?, additionalLayer: FilePath? = nil) throws(StorageError) {
        let operation = "create layer \(id)"
        guard !Self.reservedNames.contains(id.rawValue) else {
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
        let store = readWrite ? home : (imageStoreRoot ?? home)
        let cwd = FileDescriptor.currentWorkingDirectory
        let lock = try storeLock(exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        if let existing = find(id) {
            throw StorageError(.alreadyExists, operation, path: existing.directory.string, reason: "layer \(id) already exists")
        }

        var lowerText: String?
        var diffOwner = options.idMappings.rootPair ?? (0, 0)
        var diffMode = Self.baseLayerRootMode
        if let parent {
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
            lowerText = (["l/\(parentShort)"] + parentLowers.map(String.init)).joined(separator: ":")
            if let st = try? cwd.status(at: parentLayer.diff) {
                diffMode = st.permissions
                if options.idMappings.isIdentity { diffOwner = (st.userID.rawValue, st.groupID.rawValue) }
            }
        }

        let stagingRoot = store.appending("staging")
        let staging = stagingRoot.appending("create-\(id.rawValue)-\(randomSuffix())")
        let linkDirectory = store.appending(ShortLinks.directoryName)
        var short = ShortLinks.derived(from: id)
        if cwd.exists(at: linkDirectory.appending(short)) { short = ShortLinks.random() }
        do {
            try attempt(operation, staging) { () throws(Errno) in
                try cwd.makeDirectoryIfMissing(at: stagingRoot)
                try cwd.makeDirectory(at: staging, permissions: .init(rawValue: 0o700))
                let dir = try FileDescriptor.openDirectory(staging)
                defer { dir.closeQuietly() }
                if let additionalLayer {
                    // The store's files are the layer's own; the layer is only mounted read-only.
                    try dir.makeSymbolicLink(at: "diff", target: additionalLayer.appending("diff").string)
                    try dir.writeText(additionalLayer.string, at: FilePath(Self.additionalLayerFile))
                } else {
                    try dir.makeDirectory(at: "diff", permissions: diffMode)
                    try dir.changeMode(at: "diff", permissions: diffMode)  // past the umask
                    try dir.changeOwner(at: "diff", user: UserID(rawValue: diffOwner.0), group: GroupID(rawValue: diffOwner.1))
                }
                try dir.makeDirectory(at: "work", permissions: .init(rawValue: 0o700))
                try dir.makeDirectory(at: "merged", permissions: .init(rawValue: 0o700))
                try dir.writeText(short, at: "link")
                if !options.idMappings.isIdentity {
                    try dir.writeText(Self.render(options.idMappings), at: FilePath(Self.idMappingsFile))
                }
                if options.incomplete {
                    try dir.writeText(Self.processStamp(), at: FilePath(Self.incompleteFile))
                }
                if let lowerText {
                    try dir.writeText(lowerText, at: "lower")
                } else {
                    try dir.makeDirectory(at: "empty", permissions: .init(rawValue: 0o700))
                }
            }
            if !options.idMappings.isIdentity {
                try grantTraversal(of: staging, to: options.idMappings)
            }
            if !limits.isEmpty {
                try quota.setLimits(limits, on: staging.appending("diff"))
            }
            if let template {
                try TreeCopy.copyContents(of: template.diff, to: staging.appending("diff"))
            }
            if let label = options.mountLabel, labeler.isEnabled, additionalLayer == nil {
                try labeler.relabel(staging.appending("diff"), label: label, shared: false)
            }
            try attempt(operation, store.appending(id.rawValue)) { () throws(Errno) in
                try cwd.rename(staging, to: store.appending(id.rawValue), flags: .noReplace)
            }
        } catch {
            // The quota project set above goes with the directory.
            try? deleteDiscarded(staging)
            throw error
        }
        do {
            try attempt("make short link", linkDirectory.appending(short)) { () throws(Errno) in
                try cwd.makeSymbolicLink(at: linkDirectory.appending(short), target: ShortLinks.target(for: id))
            }
        } catch {
            try? discardLayer(id, in: store)
            throw error
        }
        logger.debug("created layer", metadata: ["id": "\(id)", "parent": "\(parent?.rawValue ?? "")"])
    }

    /// The layer's parent: the layer its first `lower` entry links to (`nil` for a base layer).
    /// Only that one short link is resolved, however deep the layer.
    func parentLayer(of layer: LayerLocation) throws(StorageError) -> LayerID? {
        guard let first = try lowerEntries(of: layer).first.map(String.init) else { return nil }
        let store = searchedStores.map(\.root).first {
            FileDescriptor.currentWorkingDirectory.exists(at: $0.appending(first))
        } ?? layer.store
        let link = store.appending(first)
        let target: String
        do throws(Errno) {
            target = try FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: link)
        } catch .noSuchFileOrDirectory where !layer.readOnly {
            // A lost short link: rebuild the store's links and look again.
            try repairLinks(in: layer.store)
            target = try attempt("read short link", link) { () throws(Errno) in
                try FileDescriptor.currentWorkingDirectory.readSymbolicLink(at: link)
            }
        } catch {
            throw StorageError("read short link", path: link.string, errno: error)
        }
        guard let parent = ShortLinks.layer(fromTarget: target) else {
            throw StorageError(.corrupt, "read short link", path: link.string, reason: "'\(target)' does not name a layer")
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
        let graveyard: FilePath
        do {
            let lock = try storeLock(exclusive: true)
            defer { withExtendedLifetime(lock) {} }
            guard let layer = find(id) else { return }
            guard !layer.readOnly else {
                throw StorageError(.permissionDenied, operation, path: layer.directory.string,
                                   reason: "the layer is in a read-only image store")
            }
            if let child = try childLayer(of: layer) {
                throw StorageError(.busy, operation, path: layer.directory.string,
                                   reason: "layer \(child) stacks on it; remove that layer first")
            }
            let count = try counts.lock(id)
            defer { withExtendedLifetime(count) {} }
            let merged = mountPoint(of: layer)
            if isMounted(merged) {
                try unmount(merged)
            }
            // Its short link and count go with it, while the store lock keeps a new layer of
            // the same ID from making that link again.
            graveyard = try attempt(operation, layer.directory) { () throws(Errno) in
                try retireLayer(id, in: layer.store)
            }
        }
        // The layer is gone from the store already; what cannot be deleted now, cleanup deletes.
        do throws(Errno) { try deleteDiscarded(graveyard) } catch {
            logger.warning("could not delete a removed layer's files", metadata: ["path": "\(graveyard)", "error": "\(error)"])
        }
        logger.debug("removed layer", metadata: ["id": "\(id)"])
    }

    /// A layer of a writable store whose `lower` chain names this layer's short link, if any
    /// (removing the layer would break it). The caller holds the store lock.
    func childLayer(of layer: LayerLocation) throws(StorageError) -> LayerID? {
        guard let short = FileDescriptor.currentWorkingDirectory.readShortName(at: layer.directory.appending("link")) else { return nil }
        let entry = "\(ShortLinks.directoryName)/\(short)"
        for (root, readOnly) in searchedStores where !readOnly {
            guard let dir = try? FileDescriptor.openDirectory(root) else { continue }
            defer { dir.closeQuietly() }
            for candidate in (try? dir.directoryEntries()) ?? [] where candidate.kind == .directory && candidate.name != layer.id.rawValue {
                guard !Self.reservedNames.contains(candidate.name), let id = try? LayerID(candidate.name),
                      let parent = Self.firstLowerEntry(dir, FilePath("\(candidate.name)/lower"))
                else { continue }
                if parent == entry { return id }
            }
        }
        return nil
    }

    /// The first entry of a `lower` file (the parent's `l/<short>`), read from no more of the
    /// file than that entry: a direct child's `lower` always starts with its parent's link, and
    /// deep layers' files run to 500 entries.
    static func firstLowerEntry(_ directory: FileDescriptor, _ path: FilePath) -> String? {
        guard let fd = try? directory.open(at: path, flags: O_RDONLY | O_NOFOLLOW) else { return nil }
        defer { fd.closeQuietly() }
        // `l/` and a 26-character short name, then `:` or a newline.
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = (try? buffer.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        let first = buffer[0..<n].split(whereSeparator: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "\n") }).first
        return first.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the layer exists in the home or a searched store.
    public func exists(_ id: LayerID) -> Bool { find(id) != nil }

    /// The layers of the home and the image store.
    public func listLayers() throws(StorageError) -> [LayerID] {
        var result: [LayerID] = []
        for (root, readOnly) in searchedStores where !readOnly {
            try attempt("list layers", root) { () throws(Errno) in
                let dir = try FileDescriptor.openDirectory(root)
                defer { dir.closeQuietly() }
                for entry in try dir.directoryEntries() where entry.kind == .directory || entry.kind == .unknown {
                    guard !Self.reservedNames.contains(entry.name), let id = try? LayerID(entry.name),
                          dir.exists(at: FilePath("\(entry.name)/diff"))
                    else { continue }
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
            let dir = try FileDescriptor.openDirectory(layer.diff)
            defer { dir.closeQuietly() }
            return try TreeSize.measure(dir)
        }
    }
}
