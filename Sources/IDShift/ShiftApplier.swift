import GraphDriver
import StrataSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The second pass: makes the planned changes, directory by directory, on a few threads.
///
/// The same pass applies an undo plan (`DirectoryPlan.undo`); then a name or directory that is
/// gone is skipped (`skipMissing`): it has nothing left to put back.
final class ShiftApplier: @unchecked Sendable {
    private let root: FileDescriptor
    private let tree: FilePath
    private let plans: [DirectoryPlan]
    private let threads: Int
    private let skipMissing: Bool
    private let faultInjection: ShiftFaultInjection?

    private struct Progress {
        var next = 0
        var failure: StorageError?
        var entriesStarted = 0
    }
    private let progress = Mutex(Progress())

    init(root: FileDescriptor, tree: FilePath, plans: [DirectoryPlan], threads: Int,
         skipMissing: Bool = false, faultInjection: ShiftFaultInjection? = nil) {
        self.root = root
        self.tree = tree
        self.plans = plans
        self.threads = threads
        self.skipMissing = skipMissing
        self.faultInjection = faultInjection
    }

    func run() throws(StorageError) {
        if !plans.isEmpty {
            runOnThreads(min(threads, plans.count)) { self.work() }
        }
        let (failure, entriesStarted) = progress.withLock { ($0.failure, $0.entriesStarted) }
        if let failure { throw failure }
        // Injected after the last entry: the shift is made, but whoever made it learns nothing.
        if let faultInjection, faultInjection.entries == entriesStarted {
            try inject(faultInjection)
        }
    }

    private func work() {
        while true {
            let index: Int? = progress.withLock { state in
                guard state.failure == nil, state.next < plans.count else { return nil }
                state.next += 1
                return state.next - 1
            }
            guard let index else { return }
            do throws(StorageError) {
                try apply(plans[index])
            } catch {
                progress.withLock { state in if state.failure == nil { state.failure = error } }
                return
            }
        }
    }

    /// Counts one more entry about to be changed and, when fault injection is set and this is
    /// the entry it names, fails or kills the process before the entry is touched.
    private func countEntry() throws(StorageError) {
        guard let faultInjection else { return }
        let started = progress.withLock { state in
            state.entriesStarted += 1
            return state.entriesStarted - 1
        }
        if started == faultInjection.entries { try inject(faultInjection) }
    }

    private func inject(_ fault: ShiftFaultInjection) throws(StorageError) {
        switch fault {
        case .fail(let entries):
            throw StorageError(.io, "shift ownership", path: tree.string,
                               reason: "fault injection: stopped after \(entries) entries", errno: .ioError)
        case .kill:
            kill(getpid(), SIGKILL)
            while true { pause() }
        }
    }

    private func fullPath(_ directory: FilePath, _ name: FilePath) -> String {
        tree.pushing(directory).pushing(name).lexicallyNormalized().string
    }

    private func apply(_ plan: DirectoryPlan) throws(StorageError) {
        let directory: FileDescriptor
        if plan.path.isEmpty {
            directory = root
        } else {
            do throws(Errno) {
                directory = try root.openDirectory(beneath: plan.path)
            } catch .noSuchFileOrDirectory where skipMissing {
                return
            } catch {
                throw StorageError("shift ownership: open directory", path: fullPath(plan.path, "."), errno: error)
            }
        }
        defer { if !plan.path.isEmpty { directory.closeQuietly() } }
        for change in plan.entries {
            try countEntry()
            let path = change.name
            var step = "chown"
            do throws(Errno) {
                if let owner = change.owner {
                    try directory.changeOwner(at: path, user: UserID(rawValue: owner.uid), group: GroupID(rawValue: owner.gid))
                }
                for attribute in change.attributes {
                    step = "write \(attribute.name)"
                    try directory.setExtendedAttributeNoFollow(attribute.name, attribute.value, at: path)
                }
                if let mode = change.mode {
                    step = "restore mode"
                    try directory.changeModeNoFollow(at: path, permissions: mode)
                }
            } catch .noSuchFileOrDirectory where skipMissing {
                continue
            } catch {
                throw StorageError("shift ownership: \(step)", path: fullPath(plan.path, change.name), errno: error)
            }
        }
    }
}

extension FileDescriptor {
    /// Opens a directory by its path below this one, refusing symlinks, `..` and other
    /// filesystems; a path longer than the kernel takes in one call is opened a component at a
    /// time, each relative to the last. The empty path opens this directory again.
    func openDirectory(beneath path: FilePath) throws(Errno) -> FileDescriptor {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW
        if path.isEmpty { return try open(at: ".", flags: flags) }
        if path.length < Int(PATH_MAX) - 1 {
            return try open(at: path, flags: flags, resolve: [.beneath, .noSymlinks, .noCrossDevice])
        }
        // Split the bytes on "/" rather than through `FilePath.components`, which is far slower.
        let components: [FilePath] = path.withPlatformString { start in
            var result: [FilePath] = []
            var bytes = Array(UnsafeBufferPointer(start: start, count: strlen(start) + 1))
            bytes.withUnsafeMutableBufferPointer { buffer in
                var componentStart = 0
                for index in buffer.indices where buffer[index] == 0x2F || buffer[index] == 0 {
                    let isEnd = buffer[index] == 0
                    buffer[index] = 0
                    if index > componentStart {
                        result.append(FilePath(platformString: buffer.baseAddress! + componentStart))
                    }
                    componentStart = index + 1
                    if isEnd { break }
                }
            }
            return result
        }
        var current = try open(at: ".", flags: flags)
        for component in components {
            let next: FileDescriptor
            do throws(Errno) {
                next = try current.open(at: component, flags: flags, resolve: [.beneath, .noSymlinks, .noCrossDevice])
            } catch {
                current.closeQuietly()
                throw error
            }
            current.closeQuietly()
            current = next
        }
        return current
    }
}
