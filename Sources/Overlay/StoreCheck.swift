import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One thing `OverlayDriver.check(repair:)` found wrong with a store.
public struct StoreProblem: Sendable, Hashable, CustomStringConvertible {
    /// What kind of damage it is.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A layer directory without `diff` (a create or remove that did not finish).
        case halfMadeLayer = "half-made layer"
        /// A layer lacks `work`, `merged` or (a base layer) `empty`.
        case missingDirectory = "missing directory"
        /// A layer's `link` file is missing or does not hold a short name.
        case missingLink = "missing link file"
        /// A layer's `l/<short>` entry is missing or points elsewhere.
        case missingShortLink = "missing short link"
        /// A `lower` entry does not resolve to an existing layer.
        case brokenLower = "broken lower chain"
        /// A staging directory or temporary file no live operation holds.
        case staleStaging = "stale staging"
        /// Something is mounted that no count accounts for.
        case leakedMount = "leaked mount"
        /// A mount count above zero for a layer that is not mounted, or a count of a missing layer.
        case staleMountCount = "stale mount count"
        /// An `l/` entry pointing at no layer.
        case orphanLink = "orphan short link"
        /// A layer created incomplete (an import's) whose contents never arrived.
        case incompleteLayer = "incomplete layer"
        /// A layer whose owner shift was cut short; repairing (or `cleanup`) rolls it back from
        /// its undo journal, so that its owners and `idmaps` are all as before the shift.
        case interruptedRemap = "interrupted remap"
    }

    /// What kind of damage it is.
    public let kind: Kind
    /// The path at fault.
    public let path: String
    /// What exactly is wrong.
    public let detail: String

    public init(_ kind: Kind, _ path: FilePath, _ detail: String) {
        self.kind = kind
        self.path = path.string
        self.detail = detail
    }

    /// `<kind>: <path>: <detail>`.
    public var description: String { "\(kind.rawValue): \(path): \(detail)" }
}

/// What `OverlayDriver.check(repair:)` found and did.
public struct StoreCheckReport: Sendable {
    /// The number of layers checked.
    public var layers = 0
    /// The problems found (before any repair).
    public var problems: [StoreProblem] = []
    /// What repairing did, one sentence each.
    public var repairs: [String] = []
    /// The problems still there (after repairing, when asked to).
    public var remaining: [StoreProblem] = []
    /// Whether no problem remains.
    public var isClean: Bool { remaining.isEmpty }
}

extension OverlayDriver {
    /// Verifies the store and, with `repair`, fixes what can be fixed.
    ///
    /// Every layer must have its `diff`, `work`, `merged`, `link` and `l/` entry, and a `lower`
    /// chain of short links that resolve; no staging directory or temporary file may be left by
    /// an operation that is no longer running; every mounted layer must be counted and every
    /// counted one mounted; every `l/` entry must point at a layer. Runs under the exclusive
    /// store lock, so no create, remove, apply or mount is in flight while it looks.
    ///
    /// Repairing removes stale staging (unmounting and releasing its quota project first) and
    /// half-made layer directories, remakes missing directories, rebuilds `link` files and `l/`
    /// entries, removes orphan links, unmounts leaked mounts, resets stale counts and rolls back
    /// interrupted remaps. A broken
    /// `lower` chain whose parent layer is gone cannot be repaired and stays reported.
    public func check(repair: Bool) throws(StorageError) -> StoreCheckReport {
        try withStoreLock(exclusive: true) { () throws(StorageError) in checkLocked(repair: repair) }
    }

    private func checkLocked(repair: Bool) -> StoreCheckReport {
        var report = StoreCheckReport()
        let (layers, found) = inspectStore()
        report.layers = layers
        report.problems = found
        guard repair, !found.isEmpty else {
            report.remaining = found
            return report
        }
        report.repairs = repairStore(found)
        report.remaining = inspectStore().problems
        return report
    }

    // MARK: - Looking

    private func inspectStore() -> (layers: Int, problems: [StoreProblem]) {
        var problems: [StoreProblem] = []
        var layerCount = 0
        var mergedPaths = Set<String>()
        // Whether each `lower` entry resolves: a chain of N layers names its base N times.
        var resolves: [Substring: Bool] = [:]
        for store in writableStores {
            problems += unheldStagingDirectories(in: store).map { StoreProblem(.staleStaging, $0.path, "no running operation holds it") }
            for entry in (try? store.directory().entries()) ?? [] where entry.kind == .directory {
                if StoreLayout.isStaleProbe(entry.name) {
                    problems.append(StoreProblem(.staleStaging, store.path(entry.name), "left by a feature probe whose process is gone"))
                }
                guard !StoreLayout.reservedNames.contains(entry.name), let id = try? LayerID(entry.name) else { continue }
                let layer = store.layer(id)
                guard layer.has(StoreLayout.diff) else {
                    problems.append(StoreProblem(.halfMadeLayer, layer.directory, "the layer directory has no diff"))
                    continue
                }
                layerCount += 1
                mergedPaths.insert(mountPoint(of: layer).string)
                problems += inspectLayer(layer, resolves: &resolves)
            }
            problems += orphanLinks(in: store)
        }
        problems += inspectMountCounts()
        // Mounts under the home that belong to no layer (staging mounts are staging's problem).
        let staging = writableStores.map { $0.pathString(StoreLayout.staging + "/") }
        for entry in Mounts.mountTable() where entry.mountPoint.hasPrefix(home.string + "/") {
            guard !mergedPaths.contains(entry.mountPoint), !staging.contains(where: { entry.mountPoint.hasPrefix($0) }),
                  !entry.mountPoint.hasPrefix(homeStore.pathString(StoreLayout.probePrefix))  // a probe's (stale ones are staging)
            else { continue }
            problems.append(StoreProblem(.leakedMount, FilePath(entry.mountPoint), "mounted, but not a layer's mount point"))
        }
        // Views a crashed naive diff left in the run home.
        for entry in (try? counts.runHome.entries()) ?? [] where entry.name.hasPrefix(RunHomeLayout.naivePrefix) {
            problems.append(StoreProblem(.staleStaging, runHome.appending(entry.name), "left by a diff that did not finish"))
        }
        return (layerCount, problems)
    }

    private func inspectLayer(_ layer: LayerLocation, resolves: inout [Substring: Bool]) -> [StoreProblem] {
        var problems: [StoreProblem] = []
        let directory = layer.directory
        let lowers = (try? lowerEntries(of: layer)) ?? []
        var wanted = [StoreLayout.work, StoreLayout.merged]
        if !layer.has(StoreLayout.lower) { wanted.append(StoreLayout.empty) }
        for name in wanted where !layer.has(name) {
            problems.append(StoreProblem(.missingDirectory, layer.path(name), "the layer's \(name) directory is missing"))
        }
        // Leftovers of an apply (`.diff.apply-*`) or of a small file's atomic write (`.*.tmp`, `*.new`).
        for entry in (try? layer.store.directory().entries(at: FilePath(layer.id.rawValue))) ?? []
        where StoreLayout.isLeftover(entry.name) {
            problems.append(StoreProblem(.staleStaging, layer.path(entry.name), "left by an operation that did not finish"))
        }
        if hasRemapMarker(layer), !remapIsRunning(layer) {
            problems.append(StoreProblem(.interruptedRemap, directory, layer.has(StoreLayout.remapJournal)
                ? "its owner shift was cut short, so its owners may be mixed; strata cleanup or check --repair rolls it back from its undo journal"
                : "its owner shift was cut short before it changed any file, or after it finished; strata cleanup or check --repair removes its marker"))
        }
        if isAbandoned(layer.id) {
            problems.append(StoreProblem(.incompleteLayer, directory, "created for contents that never arrived"))
        }
        if let short = layer.shortName {
            let link = StoreLayout.shortLinkName(short)
            if (try? layer.store.readLink(link)) != ShortLinks.target(for: layer.id) {
                problems.append(StoreProblem(.missingShortLink, layer.store.path(link), "should point to \(ShortLinks.target(for: layer.id))"))
            }
        } else {
            problems.append(StoreProblem(.missingLink, layer.path(StoreLayout.link), "missing or not a short name"))
        }
        for entry in lowers {
            let resolved: Bool
            if let known = resolves[entry] {
                resolved = known
            } else {
                resolved = lowerResolves(entry)
                resolves[entry] = resolved
            }
            guard !resolved else { continue }
            problems.append(StoreProblem(.brokenLower, layer.path(StoreLayout.lower), "'\(entry)' does not lead to a layer"))
        }
        return problems
    }

    /// Whether a `lower` entry (`l/<short>`) leads to an existing layer's `diff` in some store.
    private func lowerResolves(_ entry: Substring) -> Bool {
        let prefix = StoreLayout.shortLinkName("")
        guard entry.hasPrefix(prefix), ShortLinks.isShortName(entry.dropFirst(prefix.count)) else { return false }
        for store in searchedStores {
            guard let target = try? store.readLink(String(entry)), let id = ShortLinks.layer(fromTarget: target) else { continue }
            if store.layer(id).has(StoreLayout.diff) { return true }
        }
        return false
    }

    private func orphanLinks(in store: StoreLayout) -> [StoreProblem] {
        guard let dir = try? store.directory().openDirectory(at: FilePath(StoreLayout.linkDirectory)) else { return [] }
        defer { dir.closeQuietly() }
        var problems: [StoreProblem] = []
        for entry in (try? dir.directoryEntries()) ?? [] {
            let target = try? dir.readSymbolicLink(at: FilePath(entry.name))
            if let target, let id = ShortLinks.layer(fromTarget: target), store.layer(id).has(StoreLayout.diff) {
                continue
            }
            problems.append(StoreProblem(.orphanLink, store.path(StoreLayout.shortLinkName(entry.name)),
                                         "points to \(target.map { "'\($0)'" } ?? "nothing"), not a layer"))
        }
        return problems
    }

    /// Mount counts against what is mounted.
    private func inspectMountCounts() -> [StoreProblem] {
        var problems: [StoreProblem] = []
        var counted = Set<LayerID>()
        for entry in (try? counts.runHome.entries(at: FilePath(RunHomeLayout.mounts))) ?? [] {
            let path = counts.directory.appending(entry.name)
            guard let id = try? LayerID(entry.name), let layer = find(id) else {
                problems.append(StoreProblem(.staleMountCount, path, "counts mounts of a layer that does not exist"))
                continue
            }
            counted.insert(id)
            let count = counts.read(id)
            let mounted = isMounted(mountPoint(of: layer))
            if mounted && count == 0 {
                problems.append(StoreProblem(.leakedMount, mountPoint(of: layer), "mounted, but its mount count is 0"))
            } else if !mounted && count > 0 {
                problems.append(StoreProblem(.staleMountCount, path, "counts \(count) mount(s), but the layer is not mounted"))
            }
        }
        // Mounted layers with no count file at all.
        for store in writableStores {
            for (id, _) in (try? store.layerEntries()) ?? [] where !counted.contains(id) {
                let layer = store.layer(id)
                if layer.has(StoreLayout.diff), isMounted(mountPoint(of: layer)) {
                    problems.append(StoreProblem(.leakedMount, mountPoint(of: layer), "mounted, but it has no mount count"))
                }
            }
        }
        return problems
    }
}

extension OverlayDriver {
    /// Removes the layer's `incomplete` marker.
    public func markComplete(_ id: LayerID) throws(StorageError) {
        let layer = try locate(id, operation: "mark layer \(id) complete")
        try attempt("mark layer \(id) complete", layer.path(StoreLayout.incomplete)) { () throws(Errno) in
            try layer.remove(StoreLayout.incomplete, missingOK: true)
        }
    }

    /// Whether the layer carries an `incomplete` marker.
    public func isIncomplete(_ id: LayerID) -> Bool {
        find(id)?.has(StoreLayout.incomplete) ?? false
    }

    /// Whether the layer is incomplete and the process that created it (named in the marker by
    /// its stamp) no longer runs.
    public func isAbandoned(_ id: LayerID) -> Bool {
        guard let layer = find(id), let stamp = try? layer.read(StoreLayout.incomplete) else { return false }
        return !ProcessStamp.isAlive(stamp)
    }
}
