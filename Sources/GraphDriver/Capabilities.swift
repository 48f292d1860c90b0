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
    /// Whether the kernel can present `mappings` at mount time (idmapped lower layers).
    func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool
    /// A detached, idmapped clone of the mount at `path`.
    func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor
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

    public func supportsIdmappedMounts(_ mappings: IDMappings) -> Bool { false }

    public func idmappedMount(of path: FilePath, mappings: IDMappings) throws(StorageError) -> FileDescriptor {
        throw StorageError(.unsupported, "idmapped mount", path: path.string, reason:
            "idmapped mounts need an ownership shifter, which this driver was not given")
    }
}
