import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Per-directory size and inode limits with filesystem project quotas (XFS, or ext4 mounted
/// with `prjquota`), set by `ioctl(FS_IOC_FSSETXATTR)` and `quotactl(2)`.
///
/// Each limited directory gets a project ID of its own, above the home's base ID, with
/// `FS_XFLAG_PROJINHERIT` so everything created below it is charged to it. Usage comes from the
/// quota in constant time. A released directory's limits are cleared and its ID is free again.
///
/// Compared with containers/storage: support is detected from the kernel's quota state rather
/// than the filesystem's name; limits are always sent in full; IDs are released and reused;
/// the block device node the calls go through is recreated when it goes missing.
public final class ProjectQuotaControl: QuotaControl, @unchecked Sendable {
    /// The directory whose filesystem is managed (the driver's home).
    public let home: FilePath
    /// Project IDs handed out are above this one.
    public let baseProjectID: UInt32
    /// The block device node `quotactl` is given, made in `home`.
    public let deviceNode: FilePath
    private let device: UInt64
    private let lockPath: FilePath

    /// Name of the device node kept in the home (the name containers/storage uses).
    public static let deviceNodeName = "backingFsBlockDev"

    /// Sets up quotas for the filesystem of `home`; throws `unsupported` with the reason when the
    /// filesystem has no project quota accounting and enforcement.
    public init(home: FilePath) throws(StorageError) {
        self.home = home
        deviceNode = home.appending(Self.deviceNodeName)
        lockPath = home.appending("quota.lock")
        let homeFD: FileDescriptor = try attempt("set up project quotas", home) { () throws(Errno) in
            try FileDescriptor.openDirectory(home)
        }
        defer { homeFD.closeQuietly() }
        let status: FileStatus
        let attributes: InodeAttributes
        do throws(Errno) {
            status = try homeFD.status()
            attributes = try homeFD.inodeAttributes()
        } catch {
            throw StorageError(.unsupported, "set up project quotas", path: home.string,
                               reason: "the filesystem does not report project IDs (\(error))", errno: error)
        }
        device = status.device
        try Self.makeDeviceNode(deviceNode, device: device)
        let state: ProjectQuotaState
        do throws(Errno) {
            state = try ProjectQuotaCalls.state(device: deviceNode)
        } catch {
            throw Self.unsupported(home, "the kernel refused to report its project quota state (\(error))", errno: error)
        }
        guard state.accounting && state.enforcing else {
            throw Self.unsupported(home, "project quota accounting or enforcement is off")
        }
        // The home's own project is the base; a home without one gets an ID derived from its
        // inode, kept on the home so every process agrees.
        if attributes.projectID != 0 {
            baseProjectID = attributes.projectID
        } else {
            let derived = UInt32(truncatingIfNeeded: status.inode % 0x4000_0000) + 0x1000_0000
            var updated = attributes
            updated.projectID = derived
            try attempt("set the home's project ID", home) { () throws(Errno) in
                try homeFD.setInodeAttributes(updated)
            }
            baseProjectID = derived
        }
    }

    private static func unsupported(_ home: FilePath, _ why: String, errno: Errno? = nil) -> StorageError {
        let type = try? FileSystemStatus.of(home).type
        let fs = type == .ext4 ? "ext4" : type?.description ?? "unknown"
        return StorageError(.unsupported, "set up project quotas", path: home.string, reason:
            "\(why): size and inode limits need the \(fs) filesystem mounted with the prjquota option", errno: errno)
    }

    /// Makes the block device node for `device` unless the right one is already there.
    ///
    /// Processes starting on a new home race to make it: a node another one made between the
    /// check and `mknodat` is accepted when its kind and device are right. Only a wrong file is
    /// removed, never a missing one, so a process does not delete the node another just made.
    static func makeDeviceNode(_ path: FilePath, device: UInt64) throws(StorageError) {
        let cwd = FileDescriptor.currentWorkingDirectory
        func existing() -> FileStatus? { try? cwd.status(at: path) }
        func isRight(_ st: FileStatus?) -> Bool { st?.kind == .blockDevice && st?.specialDevice == device }
        let found = existing()
        if isRight(found) { return }
        if found != nil { _ = try? cwd.remove(at: path) }
        do throws(Errno) {
            try cwd.makeNode(at: path, kind: .blockDevice, permissions: .init(rawValue: 0o600), device: device)
        } catch .fileExists where isRight(existing()) {
            return
        } catch {
            throw StorageError("make the quota device node", path: path.string, errno: error)
        }
    }

    public var isSupported: Bool { true }

    /// Gives `directory` a free project ID and sets `limits` on it.
    public func setLimits(_ limits: QuotaLimits, on directory: FilePath) throws(StorageError) {
        try Self.makeDeviceNode(deviceNode, device: device)
        let lock = try takeLock()
        defer { lock.closeQuietly() }
        let dir: FileDescriptor = try attempt("set quota", directory) { () throws(Errno) in
            try FileDescriptor.openDirectory(directory)
        }
        defer { dir.closeQuietly() }
        let project = try nextFreeProjectID()
        try attempt("set quota", directory) { () throws(Errno) in
            // Limits first, so the directory is never charged to a project with stale limits.
            try ProjectQuotaCalls.setLimits(device: deviceNode, project: project,
                                            bytes: limits.size ?? 0, inodes: limits.inodes ?? 0)
            var attributes = try dir.inodeAttributes()
            attributes.projectID = project
            attributes.inheritsProject = true
            try dir.setInodeAttributes(attributes)
        }
    }

    /// The bytes and inodes charged to `directory`'s project; `nil` when it has none of its own.
    public func usage(of directory: FilePath) throws(StorageError) -> DiskUsage? {
        guard let project = try projectID(of: directory), project != baseProjectID else { return nil }
        try Self.makeDeviceNode(deviceNode, device: device)
        return try attempt("read quota", directory) { () throws(Errno) in
            let record = try ProjectQuotaCalls.record(device: deviceNode, project: project)
            return DiskUsage(bytes: Int64(record.bytesUsed), inodes: Int64(record.inodesUsed))
        }
    }

    /// The limits set on `directory`'s project; `nil` when it has none of its own.
    public func limits(of directory: FilePath) throws(StorageError) -> QuotaLimits? {
        guard let project = try projectID(of: directory), project != baseProjectID else { return nil }
        try Self.makeDeviceNode(deviceNode, device: device)
        return try attempt("read quota", directory) { () throws(Errno) in
            let record = try ProjectQuotaCalls.record(device: deviceNode, project: project)
            return QuotaLimits(size: record.byteLimit == 0 ? nil : record.byteLimit,
                               inodes: record.inodeLimit == 0 ? nil : record.inodeLimit)
        }
    }

    /// Clears `directory`'s limits so its project ID can be handed out again.
    public func release(_ directory: FilePath) throws(StorageError) {
        guard let project = try projectID(of: directory), project != baseProjectID else { return }
        try Self.makeDeviceNode(deviceNode, device: device)
        try attempt("release quota", directory) { () throws(Errno) in
            try ProjectQuotaCalls.setLimits(device: deviceNode, project: project, bytes: 0, inodes: 0)
        }
    }

    /// The project ID of `directory`, `nil` when it has none.
    public func projectID(of directory: FilePath) throws(StorageError) -> UInt32? {
        do throws(Errno) {
            let dir = try FileDescriptor.openDirectory(directory)
            defer { dir.closeQuietly() }
            let id = try dir.inodeAttributes().projectID
            return id == 0 ? nil : id
        } catch .noSuchFileOrDirectory {
            return nil
        } catch {
            throw StorageError("read project ID", path: directory.string, errno: error)
        }
    }

    // MARK: - Allocation

    /// The lowest ID above the base that no directory in the home uses and that has no limits
    /// left on it (a directory removed without ``release(_:)`` leaves its limits in the quota).
    /// Directories are found two levels down (`<home>/<id>/diff` and `<home>/<id>`); entries of
    /// unknown kind (filesystems without `d_type`) are tried as directories.
    private func nextFreeProjectID() throws(StorageError) -> UInt32 {
        var used: Set<UInt32> = [baseProjectID]
        try attempt("scan project IDs", home) { () throws(Errno) in
            let homeFD = try FileDescriptor.openDirectory(home)
            defer { homeFD.closeQuietly() }
            for entry in try homeFD.directoryEntries() where entry.kind == .directory || entry.kind == .unknown {
                guard let layer = try? homeFD.openDirectory(at: FilePath(entry.name)) else { continue }
                defer { layer.closeQuietly() }
                if let id = try? layer.inodeAttributes().projectID, id != 0 { used.insert(id) }
                for child in (try? layer.directoryEntries()) ?? [] where child.kind == .directory || child.kind == .unknown {
                    guard let sub = try? layer.openDirectory(at: FilePath(child.name)) else { continue }
                    if let id = try? sub.inodeAttributes().projectID, id != 0 { used.insert(id) }
                    sub.closeQuietly()
                }
            }
        }
        var candidate = baseProjectID
        while true {
            candidate &+= 1
            if candidate == 0 || used.contains(candidate) { continue }
            if try hasLimits(candidate) { continue }
            return candidate
        }
    }

    /// Whether the quota holds a byte or inode limit for `project`; a project the quota has no
    /// record of has none.
    private func hasLimits(_ project: UInt32) throws(StorageError) -> Bool {
        do throws(Errno) {
            let record = try ProjectQuotaCalls.record(device: deviceNode, project: project)
            return record.byteLimit != 0 || record.inodeLimit != 0
        } catch .noSuchFileOrDirectory {
            return false
        } catch {
            throw StorageError("read quota", path: home.string, errno: error)
        }
    }

    private func takeLock() throws(StorageError) -> FileDescriptor {
        return try attempt("lock project IDs", lockPath) { () throws(Errno) in
            let fd = try FileDescriptor.currentWorkingDirectory.open(
                at: lockPath, .readWrite, options: [.create], permissions: .init(rawValue: 0o600))
            try fd.lock(exclusive: true)
            return fd
        }
    }

    /// A quota controller when `home`'s filesystem supports project quotas; otherwise one that
    /// refuses limits with the reason (naming the filesystem and the mount option it needs).
    public static func forHome(_ home: FilePath) -> any QuotaControl {
        do throws(StorageError) {
            return try ProjectQuotaControl(home: home)
        } catch {
            return QuotaUnavailable(reason: error)
        }
    }
}

/// Quotas on a filesystem that has none: usage is walked by the driver, and asking for a limit
/// fails with why limits are unavailable here.
public struct QuotaUnavailable: QuotaControl {
    /// Why project quotas could not be used.
    public let reason: StorageError

    public init(reason: StorageError) { self.reason = reason }

    public var isSupported: Bool { false }

    public func setLimits(_ limits: QuotaLimits, on directory: FilePath) throws(StorageError) {
        guard limits.isEmpty else { throw reason }
    }

    public func usage(of directory: FilePath) throws(StorageError) -> DiskUsage? { nil }
    public func release(_ directory: FilePath) throws(StorageError) {}
}
