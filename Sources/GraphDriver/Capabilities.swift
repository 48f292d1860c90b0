import SystemPackage

/// Disk quotas for layer directories (project quotas on XFS or ext4 with `prjquota`).
///
/// The driver asks for limits only on empty directories it has just made.
public protocol QuotaControl: Sendable {
    /// Whether limits can be set on this host and filesystem.
    var isSupported: Bool { get }
    /// Assigns `directory` (empty, just made) its own quota and sets `limits` on it.
    func setLimits(_ limits: QuotaLimits, on directory: FilePath) throws(StorageError)
    /// What `directory`'s quota says it holds; `nil` when it has no quota of its own.
    func usage(of directory: FilePath) throws(StorageError) -> DiskUsage?
    /// Releases `directory`'s quota before the directory is removed.
    func release(_ directory: FilePath) throws(StorageError)
}

/// Quotas where the host has none: asking for a limit is an error, never silently ignored.
public struct NoQuota: QuotaControl {
    public init() {}
    public var isSupported: Bool { false }

    public func setLimits(_ limits: QuotaLimits, on directory: FilePath) throws(StorageError) {
        guard limits.isEmpty else {
            throw StorageError(.unsupported, "set quota", path: directory.string, reason:
                "size and inode limits need project quotas, which this driver was not given "
                    + "(the backing filesystem must be XFS or ext4 mounted with prjquota)")
        }
    }

    public func usage(of directory: FilePath) throws(StorageError) -> DiskUsage? { nil }
    public func release(_ directory: FilePath) throws(StorageError) {}
}

/// SELinux labeling of mounts and files.
public protocol MountLabeler: Sendable {
    /// Whether labeling is on (SELinux enabled on the host).
    var isEnabled: Bool { get }
    /// The mount option that labels every file of a mount (`context="…"`), or `nil` when
    /// labeling is off.
    func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption?
    /// Sets `label` on every file of the tree at `path`.
    func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError)
}

/// Labels where SELinux is off: mounts carry no context (as on any host with SELinux disabled)
/// and relabeling is refused.
public struct NoMountLabels: MountLabeler {
    public init() {}
    public var isEnabled: Bool { false }
    public func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption? { nil }
    public func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError) {
        throw StorageError(.unsupported, "relabel", path: path.string, reason: "SELinux labeling is not available to this driver")
    }
}

/// Changing which IDs own a layer's files: by rewriting the tree, or at mount time with an
/// idmapped mount.
public protocol OwnershipShifter: Sendable {
    /// Rewrites the owners of every file under `tree` from `from` to `to`.
    func shift(_ tree: FilePath, from: IDMappings, to: IDMappings, ignoreChownErrors: Bool) throws(StorageError)
    /// Plans the rewrite of `tree` from `from` to `to` without changing anything, keeping what
    /// it needs to undo it. An ID the mappings cannot hold fails here.
    func prepareShift(_ tree: FilePath, from: IDMappings, to: IDMappings,
                      ignoreChownErrors: Bool) throws(StorageError) -> any PreparedOwnershipShift
    /// Puts `tree` back as the undo journal at `journal` describes it (see
    /// `PreparedOwnershipShift.writeUndoJournal`), however far the shift got. Repeatable.
    func rollBackShift(of tree: FilePath, journal: FilePath) throws(StorageError)
    /// Whether the kernel can present `mappings` at mount time (idmapped lower layers).
    func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool
    /// A detached, idmapped clone of the mount at `path`.
    func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor
}

/// A rewrite of a tree's owners, planned and not yet made. The order that keeps the tree
/// recoverable: write the undo journal, then apply; on failure, undo (or, after a crash,
/// `OwnershipShifter.rollBackShift` from the journal).
public protocol PreparedOwnershipShift: Sendable {
    /// Writes, flushed to disk and renamed into place, what undoing the shift needs. With
    /// `recordingNamesIn`, also every name below that directory now, so that a rollback there
    /// removes what the shift added (overlay copy-ups) and restores only what was there.
    func writeUndoJournal(to journal: FilePath, recordingNamesIn directory: FilePath?) throws(StorageError)
    /// Makes the changes.
    func apply() throws(StorageError)
    /// Puts back every value the shift replaces, however far `apply` got.
    func undo() throws(StorageError)
}

/// A shift that changes nothing (the same mapping on both sides): no journal, nothing to undo.
public struct NoOwnershipChange: PreparedOwnershipShift {
    public init() {}
    public func writeUndoJournal(to journal: FilePath, recordingNamesIn directory: FilePath?) throws(StorageError) {}
    public func apply() throws(StorageError) {}
    public func undo() throws(StorageError) {}
}

extension OwnershipShifter {
    /// By default a shifter cannot plan an undoable shift: anything but the same mapping on both
    /// sides is refused.
    public func prepareShift(_ tree: FilePath, from: IDMappings, to: IDMappings,
                             ignoreChownErrors: Bool) throws(StorageError) -> any PreparedOwnershipShift {
        guard from == to else {
            throw StorageError(.unsupported, "shift ownership", path: tree.string, reason:
                "this ownership shifter cannot undo a shift, which changing a layer's ID mapping needs")
        }
        return NoOwnershipChange()
    }

    /// By default there is no journal a shifter could read: refused.
    public func rollBackShift(of tree: FilePath, journal: FilePath) throws(StorageError) {
        throw StorageError(.unsupported, "roll back shift", path: tree.string, reason:
            "this ownership shifter cannot undo a shift")
    }
}

/// Shifting where it is not available: identity changes succeed, anything else is refused.
public struct NoShifting: OwnershipShifter {
    public init() {}

    public func shift(_ tree: FilePath, from: IDMappings, to: IDMappings, ignoreChownErrors: Bool) throws(StorageError) {
        guard from == to else {
            throw StorageError(.unsupported, "shift ownership", path: tree.string, reason:
                "changing a layer's ID mapping needs an ownership shifter, which this driver was not given")
        }
    }

    public func prepareShift(_ tree: FilePath, from: IDMappings, to: IDMappings,
                             ignoreChownErrors: Bool) throws(StorageError) -> any PreparedOwnershipShift {
        try shift(tree, from: from, to: to, ignoreChownErrors: ignoreChownErrors)
        return NoOwnershipChange()
    }

    public func rollBackShift(of tree: FilePath, journal: FilePath) throws(StorageError) {
        throw StorageError(.unsupported, "roll back shift", path: tree.string, reason:
            "rolling back a layer's interrupted ID mapping change needs an ownership shifter, which this driver was not given")
    }

    public func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool { false }

    public func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor {
        throw StorageError(.unsupported, "idmapped mount", path: path.string, reason:
            "idmapped mounts need an ownership shifter, which this driver was not given")
    }
}
