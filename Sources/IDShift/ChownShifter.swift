import GraphDriver
import StrataSystem
import SystemPackage

/// What to do with an ID that one of the two mappings cannot hold.
public enum UnmappedIDPolicy: Sendable, Hashable {
    /// Refuse the shift before anything is changed, naming the file (the default).
    case fail
    /// Give the file the kernel's overflow ID, as a user namespace shows an unmapped owner.
    case useOverflowID
}

/// A failure made on purpose while a shift changes files, for tests of what an interrupted
/// shift leaves behind. It is compiled in but inert: nothing happens unless
/// `ShiftOptions.faultInjection` is set. Undoing a shift is never interrupted by it.
public enum ShiftFaultInjection: Sendable, Hashable {
    /// Fails with `EIO`, as a failing system call would, when `afterEntries` entries have been
    /// changed (0: before the first; the number of planned entries: after the last).
    case fail(afterEntries: Int)
    /// Kills the whole process with `SIGKILL` at that point: a crash, for tests that run the
    /// shift in a child process.
    case kill(afterEntries: Int)

    /// The number of entries changed before the fault.
    public var entries: Int {
        switch self {
        case .fail(let entries), .kill(let entries): entries
        }
    }
}

/// How a shift runs.
public struct ShiftOptions: Sendable, Hashable {
    /// How many threads walk the tree (at least 1). Two pay even on two cores: most of the time
    /// is spent in the kernel.
    public var threads: Int
    /// What to do with an ID the mappings cannot hold.
    public var unmappedIDs: UnmappedIDPolicy
    /// The IDs given under `.useOverflowID`.
    public var overflowUID: UInt32
    public var overflowGID: UInt32
    /// Fault injection for tests: `nil` (the default) in any real use.
    public var faultInjection: ShiftFaultInjection?
    /// When set, the fault is injected only into shifts of a tree whose last path component is
    /// this (`diff`, `merged`…): for tests of one step of an operation that shifts several trees.
    public var faultInjectionTree: String?

    public init(
        threads: Int = 2, unmappedIDs: UnmappedIDPolicy = .fail,
        overflowUID: UInt32 = IDMap.overflowUserID(), overflowGID: UInt32 = IDMap.overflowGroupID(),
        faultInjection: ShiftFaultInjection? = nil, faultInjectionTree: String? = nil
    ) {
        self.threads = max(1, threads)
        self.unmappedIDs = unmappedIDs
        self.overflowUID = overflowUID
        self.overflowGID = overflowGID
        self.faultInjection = faultInjection
        self.faultInjectionTree = faultInjectionTree
    }

    /// The fault to inject into a shift of `tree`, if any.
    func fault(for tree: FilePath) -> ShiftFaultInjection? {
        guard let faultInjectionTree else { return faultInjection }
        return tree.lastComponent?.string == faultInjectionTree ? faultInjection : nil
    }
}

/// What a shift did, counted by inode.
public struct ShiftReport: Sendable, Hashable, CustomStringConvertible {
    /// Names looked at (every hard link counts once per name).
    public var entriesVisited = 0
    /// Inodes whose owner changed.
    public var ownersChanged = 0
    /// Names skipped because their inode had already been seen under another name.
    public var hardLinksSkipped = 0
    /// Files whose setuid/setgid bits were put back after the chown cleared them.
    public var modesRestored = 0
    /// Files whose `security.capability` was written back (with a v3 root ID remapped).
    public var capabilitiesRewritten = 0
    /// ACLs (`system.posix_acl_access` or `_default`) whose named entries were remapped.
    public var aclsRemapped = 0
    /// `user.containers.override_stat` values updated.
    public var overrideStatsUpdated = 0
    /// IDs the mappings could not hold that were given the overflow ID.
    public var idsOverflowed = 0
    /// Mount points found inside the tree and left alone (the walk stays on one filesystem).
    public var mountPointsSkipped = 0
    /// Wall-clock time of the whole shift.
    public var duration: Duration = .zero

    public init() {}

    public var description: String {
        "\(entriesVisited) entries, \(ownersChanged) owners changed, \(hardLinksSkipped) hard links skipped, "
            + "\(modesRestored) modes restored, \(capabilitiesRewritten) capabilities, \(aclsRemapped) ACLs, "
            + "\(overrideStatsUpdated) override_stat, \(idsOverflowed) overflowed, "
            + "\(mountPointsSkipped) mount points skipped, \(duration)"
    }

    mutating func add(_ other: ShiftReport) {
        entriesVisited += other.entriesVisited
        ownersChanged += other.ownersChanged
        hardLinksSkipped += other.hardLinksSkipped
        modesRestored += other.modesRestored
        capabilitiesRewritten += other.capabilitiesRewritten
        aclsRemapped += other.aclsRemapped
        overrideStatsUpdated += other.overrideStatsUpdated
        idsOverflowed += other.idsOverflowed
        mountPointsSkipped += other.mountPointsSkipped
    }
}

/// Shifts the owners of a tree from one mapping to another by walking it and changing each file
/// in place: what a layer needs when the kernel cannot shift it at mount time.
///
/// Each file's new owner is the new mapping's host ID of the container ID its current owner has
/// under the old mapping. The walk is anchored on directory descriptors, never follows a
/// symlink, changes each inode once (hard links included), and stays on the tree's filesystem.
/// Around each chown it keeps what chown loses or cannot know about: setuid and setgid bits,
/// `security.capability` (with a v3 capability's root ID remapped, and a v2 capability following
/// container root when on-disk root 0 is the container's root under the old mapping), the named
/// user and group entries of POSIX ACLs, and the IDs in `user.containers.override_stat`. A tree
/// shifted from the identity then reads exactly as it would through an idmapped mount.
///
/// A shift first plans every change, then makes them: an ID that cannot be mapped fails the
/// shift before any file is changed. Only a system-call failure while changing (a full disk, a
/// file removed under the walk) or a crash can leave the tree half-shifted; for those, the plan
/// keeps every value it replaces. ``prepare(tree:from:to:)`` returns the plan as a
/// ``PreparedShift``, which writes an undo journal before it changes anything and can be undone
/// in process; ``rollBack(tree:journal:)`` puts a tree back from a journal after a crash.
public struct ChownShifter: Sendable {
    public var options: ShiftOptions

    public init(options: ShiftOptions = ShiftOptions()) {
        self.options = options
    }

    /// Shifts every file under `tree` (the directory itself included) from the mapping `from`
    /// to the mapping `to`.
    ///
    /// `tree` must be a directory and not a symlink. Throws a `StorageError` naming the first
    /// file whose owner, capability root ID or ACL entry the mappings cannot hold (unless
    /// `options.unmappedIDs` is `.useOverflowID`), and leaves the tree unchanged then.
    @discardableResult
    public func shift(tree: FilePath, from: IDMappings, to: IDMappings) throws(StorageError) -> ShiftReport {
        let start = ContinuousClock.now
        if from == to { return ShiftReport() }
        let prepared = try prepare(tree: tree, from: from, to: to)
        var report = try prepared.applyChanges()
        report.duration = ContinuousClock.now - start
        return report
    }

    /// Plans the shift of `tree` from `from` to `to` without changing anything: every change,
    /// and every value it replaces.
    ///
    /// Throws as ``shift(tree:from:to:)`` does for an ID the mappings cannot hold.
    public func prepare(tree: FilePath, from: IDMappings, to: IDMappings) throws(StorageError) -> PreparedShift {
        let root: FileDescriptor = try attempt("shift ownership: open the tree", tree) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.openDirectory(at: tree)
        }
        if from == to { return PreparedShift(root: root, tree: tree, plans: [], report: ShiftReport(), options: options) }
        let translation = OwnerTranslation(from: from, to: to, options: options)
        do throws(StorageError) {
            let planner = try ShiftPlanner(root: root, tree: tree, translation: translation, threads: options.threads)
            let (plans, report) = try planner.run()
            return PreparedShift(root: root, tree: tree, plans: plans, report: report, options: options)
        } catch {
            root.closeQuietly()
            throw error
        }
    }

    /// Puts `tree` back as the undo journal at `journal` (written by
    /// ``PreparedShift/writeUndoJournal(to:recordingNamesIn:)``) describes it, however far the
    /// shift got: every owner, attribute and mode the shift replaces gets its old value again,
    /// and when the journal recorded the names the tree held, every name added since (a copy-up
    /// made by shifting through an overlay mount) is removed first.
    ///
    /// Safe to repeat: a rollback that was itself interrupted is finished by running it again.
    public func rollBack(tree: FilePath, journal: FilePath) throws(StorageError) {
        let contents = try UndoJournal(reading: journal)
        let root: FileDescriptor = try attempt("roll back shift: open the tree", tree) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.openDirectory(at: tree)
        }
        defer { root.closeQuietly() }
        var plans = contents.undo
        if let names = contents.names {
            let kept = Set(names)
            try UndoJournal.removeNames(notIn: kept, below: root, tree: tree)
            plans = plans.compactMap { plan in
                guard plan.path.isEmpty || kept.contains(plan.path) else { return nil }
                let entries = plan.entries.filter { entry in
                    entry.name == FilePath(".") || kept.contains(plan.path.pushing(entry.name))
                }
                return entries.isEmpty ? nil : DirectoryPlan(path: plan.path, entries: entries)
            }
        }
        try ShiftApplier(root: root, tree: tree, plans: plans, threads: options.threads, skipMissing: true).run()
    }

    /// Whether the kernel can shift the files of `path`'s filesystem at mount time (an idmapped
    /// mount), so that no walk is needed at all.
    public func supportsShiftingAtMount(at path: FilePath) -> Bool {
        IdmappedMount.supportsIdmappedMounts(at: path)
    }
}
