import GraphDriver
import StrataSystem
import SystemPackage

/// A shift planned but not yet made: its changes, and how to undo them.
///
/// The order that keeps a tree recoverable: ``writeUndoJournal(to:recordingNamesIn:)`` first
/// (it is on disk before anything changes), then ``apply()``. If applying fails, ``undo()``
/// puts back what was changed; if the process dies instead, ``ChownShifter/rollBack(tree:journal:)``
/// does the same from the journal.
public final class PreparedShift: PreparedOwnershipShift, @unchecked Sendable {
    /// The tree the shift changes.
    public let tree: FilePath
    /// What planning found (entries, owners, capabilities, ACLs…); the changes are not made yet.
    public let report: ShiftReport
    let plans: [DirectoryPlan]
    let options: ShiftOptions
    /// The tree, held open from planning to applying so that both see the same directory.
    private let root: FileDescriptor

    init(root: FileDescriptor, tree: FilePath, plans: [DirectoryPlan], report: ShiftReport, options: ShiftOptions) {
        self.root = root
        self.tree = tree
        self.plans = plans
        self.report = report
        self.options = options
    }

    deinit { root.closeQuietly() }

    /// Whether the shift changes nothing.
    public var isEmpty: Bool { plans.isEmpty }

    /// The number of names the shift changes.
    public var entryCount: Int { plans.reduce(0) { $0 + $1.entries.count } }

    /// The plan that undoes this shift.
    var undoPlans: [DirectoryPlan] { plans.map(\.undo) }

    /// Writes the undo journal to `journal`: written to `<journal>.new`, flushed to disk and
    /// renamed into place, so that the journal is either whole or absent.
    ///
    /// With `recordingNamesIn`, the journal also lists every name below that directory now (the
    /// overlay upper directory of a tree shifted through its mount): a rollback on that
    /// directory removes every name not listed (what the shift copied up) and restores only the
    /// listed ones.
    public func writeUndoJournal(to journal: FilePath, recordingNamesIn directory: FilePath? = nil) throws(StorageError) {
        var contents = UndoJournal(undo: undoPlans)
        if let directory {
            contents.names = try UndoJournal.names(below: directory)
        }
        try contents.write(to: journal)
    }

    /// Makes the planned changes.
    public func apply() throws(StorageError) {
        _ = try applyChanges()
    }

    /// Makes the planned changes and returns the planning report with the time taken.
    @discardableResult
    public func applyChanges() throws(StorageError) -> ShiftReport {
        let start = ContinuousClock.now
        try ShiftApplier(root: root, tree: tree, plans: plans, threads: options.threads,
                         faultInjection: options.fault(for: tree)).run()
        var done = report
        done.duration = ContinuousClock.now - start
        return done
    }

    /// Puts back every value the shift replaces, whether ``apply()`` ran, failed half-way or
    /// never started: entries not yet changed get their current values again.
    public func undo() throws(StorageError) {
        try ShiftApplier(root: root, tree: tree, plans: undoPlans, threads: options.threads, skipMissing: true).run()
    }
}
