import GraphDriver
import StrataSystem
import SystemPackage

/// Labels mounts and files with SELinux contexts, through libselinux.
///
/// When SELinux is off, labeling is off too: no `context=` option reaches a mount (as on any
/// host without SELinux), and relabeling does nothing.
public struct SELinuxLabeler: MountLabeler {
    /// Whether labeling is on; read from the host unless given (for tests).
    public let isEnabled: Bool

    public init(enabled: Bool = SELinux.isEnabled) {
        isEnabled = enabled
    }

    /// The `context` option for `label`, after checking the label against the loaded policy.
    /// The value is quoted, as `mount(2)` data needs when categories hold a comma; the
    /// `fsconfig(2)` path passes it without the quotes.
    public func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption? {
        guard isEnabled else { return nil }
        guard SELinux.isValid(label) else {
            throw StorageError(.invalidArgument, "label mount", reason:
                "'\(label)' is not a valid context in the loaded SELinux policy")
        }
        return try .quoted("context", label.rawValue)
    }

    /// Labels every file of the tree at `path` with `label` (with its categories dropped when
    /// `shared`), never following a symlink.
    public func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError) {
        guard isEnabled else { return }
        let target = shared ? label.sharedVariant : label
        guard SELinux.isValid(target) else {
            throw StorageError(.invalidArgument, "relabel", path: path.string, reason:
                "'\(target)' is not a valid context in the loaded SELinux policy")
        }
        try relabelTree(path, label: target)
    }

    private func relabelTree(_ path: FilePath, label: SELinuxContext) throws(StorageError) {
        try SELinux.setLabel(label, of: path)
        let status: FileStatus
        do throws(Errno) {
            status = try FileDescriptor.currentWorkingDirectory.status(at: path)
        } catch {
            throw StorageError("relabel", path: path.string, errno: error)
        }
        guard status.kind == .directory else { return }
        let entries: [DirectoryEntry]
        do throws(Errno) {
            let dir = try FileDescriptor.openDirectory(path)
            defer { dir.closeQuietly() }
            entries = try dir.directoryEntries()
        } catch {
            throw StorageError("relabel", path: path.string, errno: error)
        }
        for entry in entries {
            try relabelTree(path.appending(entry.name), label: label)
        }
    }
}
