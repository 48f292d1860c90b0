import GraphDriver
import StrataSystem
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Measures a directory tree: bytes of apparent size and inodes, a hard-linked file counted once.
/// Two threads share a stack of open directories; names are read straight from `getdents64` and
/// stated with `fstatat` on the directory's descriptor (no path is built, no file is opened).
public enum TreeSize {
    private final class Shared: @unchecked Sendable {
        let lock = Mutex<State>(State())
        struct State {
            var pending: [FileDescriptor] = []
            var busy = 0
            var bytes: Int64 = 0
            var inodes: Int64 = 0
            var countDirectories = true
            var linked = Set<UInt64>()
            var failure: Errno?
        }
    }

    /// Measures everything below `root` (and `root` itself as one inode). With
    /// `directorySizes: false`, directories count as inodes but not as bytes: the size of a
    /// layer's diff as containers/storage reports it.
    public static func measure(_ root: FileDescriptor, directorySizes: Bool = true, threads: Int = 2) throws(Errno) -> DiskUsage {
        let shared = Shared()
        shared.lock.withLock { $0.countDirectories = directorySizes }
        let first = try root.open(at: ".", flags: O_RDONLY | O_DIRECTORY)
        shared.lock.withLock { $0.pending.append(first) }
        runOnThreads(threads) { work(shared) }
        let state = shared.lock.withLock { $0 }
        for fd in state.pending { fd.closeQuietly() }
        if let failure = state.failure { throw failure }
        // The root itself is one inode.
        return DiskUsage(bytes: state.bytes, inodes: state.inodes + 1)
    }

    private static func work(_ shared: Shared) {
        while true {
            // Take a directory, or stop when none is left and nobody can add one.
            var next: FileDescriptor?
            while next == nil {
                let (taken, done): (FileDescriptor?, Bool) = shared.lock.withLock { state in
                    if state.failure != nil { return (nil, true) }
                    if let fd = state.pending.popLast() { state.busy += 1; return (fd, false) }
                    return (nil, state.busy == 0)
                }
                if done { return }
                if taken == nil { sched_yield() }
                next = taken
            }
            let directory = next!
            let countDirectories = shared.lock.withLock { $0.countDirectories }
            var bytes: Int64 = 0, inodes: Int64 = 0
            var linked: [(inode: UInt64, size: Int64)] = []
            var subdirectories: [FileDescriptor] = []
            var failure: Errno?
            do throws(Errno) {
                try directory.forEachDirectoryEntryName { (name, _, _) throws(Errno) in
                    let status = try directory.status(atRawName: name)
                    if status.kind == .directory {
                        subdirectories.append(try directory.open(atRawName: name, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW))
                        inodes += 1
                        if countDirectories { bytes += status.size }
                        return
                    } else if status.linkCount > 1 {
                        linked.append((status.inode, status.size))
                        return
                    }
                    bytes += status.size
                    inodes += 1
                }
            } catch {
                failure = error
            }
            directory.closeQuietly()
            let finished = subdirectories
            shared.lock.withLock { state in
                state.busy -= 1
                state.bytes += bytes
                state.inodes += inodes
                state.pending.append(contentsOf: finished)
                if let failure, state.failure == nil { state.failure = failure }
                // A hard-linked file counts once, however many names it has.
                for file in linked where state.linked.insert(file.inode).inserted {
                    state.inodes += 1
                    state.bytes += file.size
                }
            }
        }
    }
}
