import GraphDriver
import StrataSystem
import Synchronization
import SystemPackage

/// Labels mounts and files with SELinux contexts, through libselinux.
///
/// When SELinux is off, labeling is off too: no `context=` option reaches a mount (as on any
/// host without SELinux), and relabeling does nothing.
public struct SELinuxLabeler: MountLabeler {
    /// Whether labeling is on: given (for tests), or asked of the host when first needed, so
    /// that a driver that labels nothing never loads libselinux.
    public var isEnabled: Bool { enabled ?? hostEnabled.value }

    private let enabled: Bool?
    private let hostEnabled = HostAnswer()

    public init(enabled: Bool? = nil) {
        self.enabled = enabled
    }

    /// `SELinux.isEnabled`, asked once, shared by copies of the labeler.
    private final class HostAnswer: Sendable {
        private let cached = Mutex<Bool?>(nil)
        var value: Bool {
            cached.withLock { answer in
                if let answer { return answer }
                let enabled = SELinux.isEnabled
                answer = enabled
                return enabled
            }
        }
    }

    /// The `context` option for `label`, after checking the label against the loaded policy
    /// (a label it refuses is an error naming the invalid part, before any `mount(2)`).
    /// The value is quoted, as `mount(2)` data needs when categories hold a comma; the
    /// `fsconfig(2)` path passes it without the quotes.
    public func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption? {
        guard isEnabled else { return nil }
        if let problem = ContextDiagnosis.loadedPolicy().problem(with: label) {
            throw StorageError(.invalidArgument, "label mount", reason:
                "'\(label)' is not a valid context in the loaded SELinux policy: \(problem)")
        }
        return try .quoted("context", label.rawValue)
    }

    /// Labels every file of the tree at `path` with `label` (with its categories dropped when
    /// `shared`), never following a symlink.
    public func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError) {
        guard isEnabled else { return }
        let target = shared ? label.sharedVariant : label
        if let problem = ContextDiagnosis.loadedPolicy().problem(with: target) {
            throw StorageError(.invalidArgument, "relabel", path: path.string, reason:
                "'\(target)' is not a valid context in the loaded SELinux policy: \(problem)")
        }
        try Self.labelTree(path, with: target)
    }

    /// The extended attribute that holds a file's SELinux label.
    static let attributeName = "security.selinux"

    /// Sets the label of `path` and, when it is a directory, of everything below it.
    ///
    /// The walk is anchored on descriptors: each directory is opened from its parent's descriptor
    /// with `O_NOFOLLOW`, so a directory swapped for a symlink is never followed out of the tree,
    /// and names are used byte for byte, so a name that is not UTF-8 reaches its own file. The
    /// label is written as `lsetfilecon_raw` writes it: the context and a NUL. Internal so that
    /// tests can check the walk on a host where SELinux is off.
    static func labelTree(_ path: FilePath, with label: SELinuxContext) throws(StorageError) {
        let value = Array(label.rawValue.utf8) + [0]
        let cwd = FileDescriptor.currentWorkingDirectory
        let opened: FileDescriptor? = try attempt("relabel", path) { () throws(Errno) in
            try cwd.setExtendedAttributeNoFollow(attributeName, value, at: path)
            return try openIfDirectory(cwd, path)
        }
        guard let root = opened else { return }
        defer { root.closeQuietly() }
        try labelEntries(of: root, path: path, value: value)
    }

    /// Labels the entries of the open directory `directory` (at `path`, named in errors) and
    /// walks into the directories among them.
    private static func labelEntries(of directory: FileDescriptor, path: FilePath, value: [UInt8]) throws(StorageError) {
        let entries: [RawDirectoryEntry] = try attempt("relabel", path) { () throws(Errno) in
            try directory.rawDirectoryEntries()
        }
        for entry in entries {
            let child: FileDescriptor?
            do throws(Errno) {
                try directory.setExtendedAttributeNoFollow(attributeName, value, at: entry.name)
                let mayBeDirectory = entry.kind == .directory || entry.kind == .unknown
                child = mayBeDirectory ? try openIfDirectory(directory, entry.name) : nil
            } catch .noSuchFileOrDirectory {
                continue  // removed under the walk
            } catch {
                throw StorageError("relabel", path: path.pushing(entry.name).string, errno: error)
            }
            guard let child else { continue }
            defer { child.closeQuietly() }
            try labelEntries(of: child, path: path.pushing(entry.name), value: value)
        }
    }

    /// Opens `name` in `parent` when it is a directory, never following a symlink; `nil` when
    /// it is anything else (a symlink included, even one swapped in for a directory).
    private static func openIfDirectory(_ parent: FileDescriptor, _ name: FilePath) throws(Errno) -> FileDescriptor? {
        do throws(Errno) {
            return try parent.openDirectory(at: name)
        } catch .notDirectory {
            return nil
        } catch .tooManySymbolicLinkLevels {
            return nil
        }
    }
}
