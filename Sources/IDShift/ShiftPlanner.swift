import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The first pass: walks the tree on a few threads, reads each inode once and works out what
/// must change, without changing anything. Every value it plans to replace it keeps, so that
/// the plan can be undone (`DirectoryPlan.undo`).
final class ShiftPlanner: @unchecked Sendable {
    /// A directory descriptor shared by the children still waiting to be opened from it.
    final class Directory: @unchecked Sendable {
        let descriptor: FileDescriptor
        init(_ descriptor: FileDescriptor) { self.descriptor = descriptor }
        deinit { descriptor.closeQuietly() }
    }

    /// Work for a thread. A directory is opened from its parent's descriptor only when its turn
    /// comes, so that open descriptors stay few however wide the tree is; a large directory's
    /// names are split into slices so that both threads share it.
    enum Work {
        case unopened(parent: Directory, name: FilePath, path: FilePath)
        case names(Directory, path: FilePath, ArraySlice<RawDirectoryEntry>)
    }

    /// Where a name is in the tree: its directory (relative to the root) and the name. The
    /// joined path is built only when it is needed (a directory queued, an error), not for
    /// every name.
    struct Place {
        var directory: FilePath
        var name: FilePath
        var isRoot = false
        var path: FilePath { isRoot ? directory : directory.pushing(name) }
    }

    /// Names a thread plans in one go when a directory is large.
    static let sliceSize = 512

    private let root: FileDescriptor
    private let tree: FilePath
    private let translation: OwnerTranslation
    private let threads: Int
    private let rootDevice: UInt64
    /// Whether the tree is an overlay mount: there every name is shifted, hard links included,
    /// since the copy-up a chown makes splits a link (the other name would stay below, unshifted).
    private let throughOverlay: Bool

    private let lock = ConditionLock()
    // Guarded by `lock`.
    private var stack: [Work] = []
    private var busy = 0
    private var failure: StorageError?
    private var plans: [DirectoryPlan] = []
    private var report = ShiftReport()
    /// Inodes with more than one link planned already. Everything planned is on the root's
    /// device (other devices are skipped first), so the inode number alone identifies a file.
    private var linked = Set<UInt64>()

    /// Throws when the tree's own status cannot be read: without its device the walk could not
    /// tell which names are on other filesystems.
    init(root: FileDescriptor, tree: FilePath, translation: OwnerTranslation, threads: Int) throws(StorageError) {
        self.root = root
        self.tree = tree
        self.translation = translation
        self.threads = threads
        rootDevice = try attempt("shift ownership: stat the tree", tree) { () throws(Errno) in
            try root.status().device
        }
        throughOverlay = (try? FileSystemStatus.of(FilePath("/proc/self/fd/\(root.rawValue)")).type) == .overlay
    }

    /// Plans the whole tree; throws the first failure.
    func run() throws(StorageError) -> ([DirectoryPlan], ShiftReport) {
        // The root's own entry `.` first, then its names on the threads.
        var rootPlan = DirectoryPlan(path: FilePath())
        let copy = dup(root.rawValue)
        guard copy >= 0 else {
            throw StorageError("shift ownership: duplicate the tree's descriptor", path: tree.string,
                               errno: Errno(rawValue: errno))
        }
        let rootDirectory = Directory(FileDescriptor(rawValue: copy))
        try planEntry(Place(directory: FilePath(), name: ".", isRoot: true), in: rootDirectory,
                      plan: &rootPlan, report: &report)
        if !rootPlan.entries.isEmpty { plans.append(rootPlan) }
        try list(rootDirectory, path: FilePath(), into: &stack)

        runOnThreads(threads) { self.work() }
        if let failure { throw failure }
        return (plans, report)
    }

    private func work() {
        var localPlans: [DirectoryPlan] = []
        var localReport = ShiftReport()
        lock.lock()
        while true {
            while stack.isEmpty && busy > 0 && failure == nil { lock.wait() }
            if failure != nil || (stack.isEmpty && busy == 0) { break }
            let next = stack.removeLast()
            busy += 1
            lock.unlock()

            var more: [Work] = []
            var error: StorageError?
            do throws(StorageError) {
                switch next {
                case .unopened(let parent, let name, let path):
                    if let directory = try open(parent, name, path) {
                        try list(directory, path: path, into: &more)
                    }
                case .names(let directory, let path, let names):
                    var plan = DirectoryPlan(path: path)
                    for entry in names {
                        let place = Place(directory: path, name: entry.name)
                        if try planEntry(place, in: directory, plan: &plan, report: &localReport) {
                            more.append(.unopened(parent: directory, name: entry.name, path: place.path))
                        }
                    }
                    if !plan.entries.isEmpty { localPlans.append(plan) }
                }
            } catch let e {
                error = e
            }

            lock.lock()
            busy -= 1
            if let error, failure == nil { failure = error }
            stack.append(contentsOf: more.reversed())
            lock.broadcast()
        }
        plans.append(contentsOf: localPlans)
        report.add(localReport)
        lock.broadcast()
        lock.unlock()
    }

    private func fullPath(_ relative: FilePath) -> String {
        tree.pushing(relative).string
    }

    private func open(_ parent: Directory, _ name: FilePath, _ path: FilePath) throws(StorageError) -> Directory? {
        do throws(Errno) {
            return Directory(try parent.descriptor.openDirectory(at: name))
        } catch .noSuchFileOrDirectory {
            return nil  // removed under the walk: nothing left to shift
        } catch {
            throw StorageError("shift ownership: open directory", path: fullPath(path), errno: error)
        }
    }

    /// Reads a directory's names and queues them in slices.
    private func list(_ directory: Directory, path: FilePath, into work: inout [Work]) throws(StorageError) {
        let entries: [RawDirectoryEntry] = try attempt("shift ownership: read directory", fullPath(path)) { () throws(Errno) in
            try directory.descriptor.rawDirectoryEntries()
        }
        var start = 0
        while start < entries.count {
            let end = min(start + Self.sliceSize, entries.count)
            work.append(.names(directory, path: path, entries[start..<end]))
            start = end
        }
    }

    /// Plans one name: reads its status and, when it has any, its extended attributes.
    /// Returns whether it is a directory below the root that the walk goes into.
    @discardableResult
    private func planEntry(
        _ place: Place, in directory: Directory, plan: inout DirectoryPlan, report: inout ShiftReport
    ) throws(StorageError) -> Bool {
        let fd = directory.descriptor
        let path = place.name
        let status: FileStatus
        let isMountRoot: Bool?
        do throws(Errno) {
            (status, isMountRoot) = try fd.statusAndMountRoot(at: path)
        } catch .noSuchFileOrDirectory {
            return false
        } catch {
            throw StorageError("shift ownership: stat", path: fullPath(place.path), errno: error)
        }
        report.entriesVisited += 1
        let kind = status.kind
        // The walk stays on the tree's own mount: another filesystem, or a bind mount of this
        // one (of a directory or a file), is left alone, its root included. A kernel that does
        // not report mount roots (before 5.8) leaves only the device check.
        if status.device != rootDevice || (!place.isRoot && isMountRoot == true) {
            report.mountPointsSkipped += 1
            return false
        }
        if kind != .directory && status.linkCount > 1 && !throughOverlay {
            let first = lock.withLock { linked.insert(status.inode).inserted }
            if !first {
                report.hardLinksSkipped += 1
                return false
            }
        }

        var change = EntryChange(name: path)
        let uid: UInt32, gid: UInt32
        if kind == .characterDevice && status.specialDevice == 0 {
            // An overlay whiteout: overlayfs makes it as the mounter (host 0:0) whatever the
            // mapping, and its owner means nothing. It follows the shift when it can.
            uid = (try? translation.translate(status.userID.rawValue, group: false).get()) ?? status.userID.rawValue
            gid = (try? translation.translate(status.groupID.rawValue, group: true).get()) ?? status.groupID.rawValue
        } else {
            uid = try translated(status.userID.rawValue, group: false, what: "owner", place, &report)
            gid = try translated(status.groupID.rawValue, group: true, what: "group", place, &report)
        }
        let ownerChanges = uid != status.userID.rawValue || gid != status.groupID.rawValue
        if ownerChanges {
            change.owner = Ownership(uid: uid, gid: gid)
            change.oldOwner = Ownership(uid: status.userID.rawValue, gid: status.groupID.rawValue)
            report.ownersChanged += 1
            if kind != .directory && kind != .symlink && status.mode & 0o6000 != 0 {
                change.mode = status.permissions
                report.modesRestored += 1
            }
        }

        // A symlink cannot carry a capability, an ACL or a user.* attribute: no need to look.
        let names: [String] = try attempt("shift ownership: list extended attributes", fullPath(place.path)) { () throws(Errno) in
            kind == .symlink ? [] : try fd.extendedAttributeNamesNoFollow(at: path)
        }
        for attribute in names {
            switch attribute {
            case ShiftedAttribute.capability:
                guard let value = try read(attribute, fd, place) else { continue }
                var rewritten = value
                if let rootID = FileCapability.rootID(value) {
                    let mapped = try translated(rootID, group: false, what: "capability root", place, &report)
                    rewritten = FileCapability.mappingRootID(value) { _ in mapped } ?? value
                } else if translation.sourceHoldsRoot, value.count == 20 {
                    // A v2 capability belongs to on-disk root 0, as the kernel reads it (an
                    // idmapped mount shows it as v3 with the mapped root). When 0 is the
                    // container's root under the old mapping, it follows the root to the new one;
                    // a root ID of 0 is stored by the kernel as v2 again. Otherwise it is the
                    // host root's and is kept as it is.
                    let mapped = try translated(0, group: false, what: "capability root", place, &report)
                    if mapped != 0 { rewritten = FileCapability.asRevision3(value, rootID: mapped) ?? value }
                }
                // chown drops the capability; write it back even when it is the same.
                if ownerChanges || rewritten != value {
                    change.attributes.append(AttributeValue(name: attribute, value: rewritten))
                    change.oldAttributes.append(AttributeValue(name: attribute, value: value))
                    report.capabilitiesRewritten += 1
                }
            case ShiftedAttribute.aclAccess, ShiftedAttribute.aclDefault:
                guard let value = try read(attribute, fd, place),
                      var acl = PosixACL(decoding: value)
                else { continue }
                for index in acl.entries.indices {
                    switch acl.entries[index].tag {
                    case .user:
                        acl.entries[index].id = try translated(
                            acl.entries[index].id, group: false, what: "ACL user", place, &report)
                    case .group:
                        acl.entries[index].id = try translated(
                            acl.entries[index].id, group: true, what: "ACL group", place, &report)
                    default: break
                    }
                }
                let encoded = acl.encoded()
                if encoded != value {
                    change.attributes.append(AttributeValue(name: attribute, value: encoded))
                    change.oldAttributes.append(AttributeValue(name: attribute, value: value))
                    report.aclsRemapped += 1
                }
            case ShiftedAttribute.overrideStat:
                guard let value = try read(attribute, fd, place),
                      var stat = OverrideStat(value)
                else { continue }
                stat.uid = try translated(stat.uid, group: false, what: "override_stat user", place, &report)
                stat.gid = try translated(stat.gid, group: true, what: "override_stat group", place, &report)
                let encoded = stat.bytes
                if encoded != value {
                    change.attributes.append(AttributeValue(name: attribute, value: encoded))
                    change.oldAttributes.append(AttributeValue(name: attribute, value: value))
                    report.overrideStatsUpdated += 1
                }
            default:
                continue
            }
        }
        if !change.isEmpty {
            plan.entries.append(change)
        }
        return kind == .directory && !place.isRoot
    }

    private func read(_ attribute: String, _ fd: FileDescriptor, _ place: Place) throws(StorageError) -> [UInt8]? {
        return try attempt("shift ownership: read \(attribute)", fullPath(place.path)) { () throws(Errno) in
            return try fd.extendedAttributeNoFollow(attribute, at: place.name)
        }
    }

    /// An ID through the translation, or the overflow ID, or the error that names the file.
    private func translated(
        _ id: UInt32, group: Bool, what: String, _ place: Place, _ report: inout ShiftReport
    ) throws(StorageError) -> UInt32 {
        switch translation.translate(id, group: group) {
        case .success(let mapped):
            return mapped
        case .failure(let failure):
            if let overflow = translation.overflow(group: group) {
                report.idsOverflowed += 1
                return overflow
            }
            throw StorageError(.invalidArgument, "shift ownership", path: fullPath(place.path),
                               reason: translation.explain(failure, what: what))
        }
    }
}
