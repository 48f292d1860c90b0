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
        let lock = try storeLock(exclusive: true)
        defer { withExtendedLifetime(lock) {} }
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
        for (root, readOnly) in searchedStores where !readOnly {
            problems += staleStaging(in: root)
            guard let dir = try? FileDescriptor.openDirectory(root) else { continue }
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] where entry.kind == .directory {
                if Self.isStaleProbe(entry.name) {
                    problems.append(StoreProblem(.staleStaging, root.appending(entry.name), "left by a feature probe whose process is gone"))
                }
                guard !Self.reservedNames.contains(entry.name), let id = try? LayerID(entry.name) else { continue }
                let layer = LayerLocation(id: id, store: root, readOnly: false)
                guard dir.exists(at: FilePath("\(entry.name)/diff")) else {
                    problems.append(StoreProblem(.halfMadeLayer, layer.directory, "the layer directory has no diff"))
                    continue
                }
                layerCount += 1
                mergedPaths.insert(mountPoint(of: layer).string)
                problems += inspectLayer(layer, resolves: &resolves)
            }
            problems += orphanLinks(in: root)
        }
        problems += inspectMountCounts()
        // Mounts under the home that belong to no layer (staging mounts are staging's problem).
        let staging = searchedStores.filter { !$0.readOnly }.map { $0.root.string + "/staging/" }
        for entry in Mounts.mountTable() where entry.mountPoint.hasPrefix(home.string + "/") {
            guard !mergedPaths.contains(entry.mountPoint), !staging.contains(where: { entry.mountPoint.hasPrefix($0) }),
                  !entry.mountPoint.hasPrefix(home.string + "/.probe-")  // a probe's (stale ones are staging)
            else { continue }
            problems.append(StoreProblem(.leakedMount, FilePath(entry.mountPoint), "mounted, but not a layer's mount point"))
        }
        // Views a crashed naive diff left in the run home.
        if let run = try? FileDescriptor.openDirectory(runHome) {
            defer { run.closeQuietly() }
            for entry in (try? run.directoryEntries()) ?? [] where entry.name.hasPrefix("naive-") {
                problems.append(StoreProblem(.staleStaging, runHome.appending(entry.name), "left by a diff that did not finish"))
            }
        }
        return (layerCount, problems)
    }

    /// `<store>/staging/*` that no live operation holds. Under the exclusive store lock only a
    /// differ's directory can be in use (held by its `.lock`).
    private func staleStaging(in root: FilePath) -> [StoreProblem] {
        let staging = root.appending("staging")
        guard let dir = try? FileDescriptor.openDirectory(staging) else { return [] }
        defer { dir.closeQuietly() }
        var problems: [StoreProblem] = []
        for entry in (try? dir.directoryEntries()) ?? [] {
            let path = staging.appending(entry.name)
            if entry.name.hasPrefix("differ-") {
                if stagingLocks.withLock({ $0[path] != nil }) { continue }
                guard let held = try? FileLock.tryAcquire(path.appending(".lock")) else { continue }
                withExtendedLifetime(held) {}
            }
            problems.append(StoreProblem(.staleStaging, path, "no running operation holds it"))
        }
        return problems
    }

    private func inspectLayer(_ layer: LayerLocation, resolves: inout [Substring: Bool]) -> [StoreProblem] {
        let cwd = FileDescriptor.currentWorkingDirectory
        var problems: [StoreProblem] = []
        let directory = layer.directory
        let lowers = (try? lowerEntries(of: layer)) ?? []
        var wanted = ["work", "merged"]
        if !cwd.exists(at: directory.appending("lower")) { wanted.append("empty") }
        for name in wanted where !cwd.exists(at: directory.appending(name)) {
            problems.append(StoreProblem(.missingDirectory, directory.appending(name), "the layer's \(name) directory is missing"))
        }
        // Leftovers of an apply (`.diff.apply-*`) or of a small file's atomic write (`.*.tmp`, `*.new`).
        if let dir = try? FileDescriptor.openDirectory(directory) {
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] where Self.isLeftover(entry.name) {
                problems.append(StoreProblem(.staleStaging, directory.appending(entry.name), "left by an operation that did not finish"))
            }
        }
        if hasRemapMarker(layer), !remapIsRunning(layer) {
            problems.append(StoreProblem(.interruptedRemap, directory, cwd.exists(at: directory.appending(Self.remapJournalFile))
                ? "its owner shift was cut short, so its owners may be mixed; strata cleanup or check --repair rolls it back from its undo journal"
                : "its owner shift was cut short before it changed any file, or after it finished; strata cleanup or check --repair removes its marker"))
        }
        if isAbandoned(layer.id) {
            problems.append(StoreProblem(.incompleteLayer, directory, "created for contents that never arrived"))
        }
        if let short = cwd.readShortName(at: directory.appending("link")) {
            let link = layer.store.appending("\(ShortLinks.directoryName)/\(short)")
            if (try? cwd.readSymbolicLink(at: link)) != ShortLinks.target(for: layer.id) {
                problems.append(StoreProblem(.missingShortLink, link, "should point to \(ShortLinks.target(for: layer.id))"))
            }
        } else {
            problems.append(StoreProblem(.missingLink, directory.appending("link"), "missing or not a short name"))
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
            problems.append(StoreProblem(.brokenLower, directory.appending("lower"), "'\(entry)' does not lead to a layer"))
        }
        return problems
    }

    /// Whether a name in a layer's directory is a leftover of an operation that did not finish:
    /// an apply's staging tree (`.diff.apply-*`), a small file's atomic write (`.*.tmp`, a
    /// remap's `remapping.undo.new`) or an unmount's fresh mount point (`merged.1`).
    static func isLeftover(_ name: String) -> Bool {
        name.hasPrefix(".diff.apply-") || (name.hasPrefix(".") && name.hasSuffix(".tmp"))
            || name == remapJournalFile + ".new" || name == "merged.1"
    }

    /// Whether a name in a store is a feature probe's scratch directory (`.probe-<pid>-…`)
    /// whose process no longer runs.
    static func isStaleProbe(_ name: String) -> Bool {
        guard name.hasPrefix(".probe-"), let pid = Int32(name.dropFirst(7).prefix { $0 != "-" }) else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// Whether a `lower` entry (`l/<short>`) leads to an existing layer's `diff` in some store.
    private func lowerResolves(_ entry: Substring) -> Bool {
        let cwd = FileDescriptor.currentWorkingDirectory
        guard entry.hasPrefix("\(ShortLinks.directoryName)/"), ShortLinks.isShortName(entry.dropFirst(2)) else { return false }
        for (root, _) in searchedStores {
            let link = root.appending(String(entry))
            guard let target = try? cwd.readSymbolicLink(at: link), let id = ShortLinks.layer(fromTarget: target) else { continue }
            if cwd.exists(at: root.appending(id.rawValue).appending("diff")) { return true }
        }
        return false
    }

    private func orphanLinks(in root: FilePath) -> [StoreProblem] {
        let links = root.appending(ShortLinks.directoryName)
        guard let dir = try? FileDescriptor.openDirectory(links) else { return [] }
        defer { dir.closeQuietly() }
        var problems: [StoreProblem] = []
        for entry in (try? dir.directoryEntries()) ?? [] {
            let target = try? dir.readSymbolicLink(at: FilePath(entry.name))
            if let target, let id = ShortLinks.layer(fromTarget: target),
               FileDescriptor.currentWorkingDirectory.exists(at: root.appending(id.rawValue).appending("diff")) {
                continue
            }
            problems.append(StoreProblem(.orphanLink, links.appending(entry.name), "points to \(target.map { "'\($0)'" } ?? "nothing"), not a layer"))
        }
        return problems
    }

    /// Mount counts against what is mounted.
    private func inspectMountCounts() -> [StoreProblem] {
        var problems: [StoreProblem] = []
        var counted = Set<LayerID>()
        if let dir = try? FileDescriptor.openDirectory(counts.directory) {
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] {
                let path = counts.directory.appending(entry.name)
                guard let id = try? LayerID(entry.name), let layer = find(id) else {
                    problems.append(StoreProblem(.staleMountCount, path, "counts mounts of a layer that does not exist"))
                    continue
                }
                counted.insert(id)
                let count = readCount(path)
                let mounted = isMounted(mountPoint(of: layer))
                if mounted && count == 0 {
                    problems.append(StoreProblem(.leakedMount, mountPoint(of: layer), "mounted, but its mount count is 0"))
                } else if !mounted && count > 0 {
                    problems.append(StoreProblem(.staleMountCount, path, "counts \(count) mount(s), but the layer is not mounted"))
                }
            }
        }
        // Mounted layers with no count file at all.
        for (root, readOnly) in searchedStores where !readOnly {
            guard let dir = try? FileDescriptor.openDirectory(root) else { continue }
            defer { dir.closeQuietly() }
            for entry in (try? dir.directoryEntries()) ?? [] where entry.kind == .directory {
                guard let id = try? LayerID(entry.name), !counted.contains(id), !Self.reservedNames.contains(entry.name) else { continue }
                let layer = LayerLocation(id: id, store: root, readOnly: false)
                if dir.exists(at: FilePath("\(entry.name)/diff")), isMounted(mountPoint(of: layer)) {
                    problems.append(StoreProblem(.leakedMount, mountPoint(of: layer), "mounted, but it has no mount count"))
                }
            }
        }
        return problems
    }

    private func readCount(_ path: FilePath) -> Int {
        guard let text = try? FileDescriptor.currentWorkingDirectory.readText(at: path) else { return 0 }
        return Int(text.split(separator: "\n").first ?? "") ?? 0
    }
}

extension OverlayDriver: IncompleteLayerMarking {
    /// The file in a layer's directory marking it incomplete.
    static let incompleteFile = "incomplete"

    /// Removes the layer's `incomplete` marker.
    public func markComplete(_ id: LayerID) throws(StorageError) {
        let layer = try locate(id, operation: "mark layer \(id) complete")
        let path = layer.directory.appending(Self.incompleteFile)
        try attempt("mark layer \(id) complete", path) { () throws(Errno) in
            do throws(Errno) { try FileDescriptor.currentWorkingDirectory.remove(at: path) } catch .noSuchFileOrDirectory {}
        }
    }

    /// Whether the layer carries an `incomplete` marker.
    public func isIncomplete(_ id: LayerID) -> Bool {
        guard let layer = find(id) else { return false }
        return FileDescriptor.currentWorkingDirectory.exists(at: layer.directory.appending(Self.incompleteFile))
    }

    /// Whether the layer is incomplete and the process that created it (named in the marker by
    /// its pid and start time) no longer runs.
    public func isAbandoned(_ id: LayerID) -> Bool {
        guard let layer = find(id),
              let stamp = try? FileDescriptor.currentWorkingDirectory.readText(at: layer.directory.appending(Self.incompleteFile))
        else { return false }
        return !Self.stampIsAlive(stamp)
    }

    /// Whether the process a `processStamp()` names still runs.
    static func stampIsAlive(_ stamp: String) -> Bool {
        let parts = stamp.split(separator: " ")
        guard parts.count == 2, let pid = Int32(parts[0]) else { return false }
        return startTime(of: pid) == String(parts[1].hasSuffix("\n") ? parts[1].dropLast() : parts[1])
    }

    /// `<pid> <start time>` of this process: what names it uniquely across pid reuse.
    static func processStamp() -> String {
        "\(getpid()) \(startTime(of: getpid()) ?? "0")"
    }

    /// A process's start time (field 22 of `/proc/<pid>/stat`), `nil` when it does not exist.
    static func startTime(of pid: Int32) -> String? {
        guard let text = try? FileDescriptor.currentWorkingDirectory.readText(at: FilePath("/proc/\(pid)/stat")),
              let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name, which may hold spaces: state is field 3, start time 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
