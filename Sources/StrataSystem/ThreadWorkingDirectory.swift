import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Runs work with a working directory of its own, without changing the process's: on a new
/// thread that first stops sharing filesystem attributes with the rest of the process.
///
/// For calls that take only relative paths too long to spell absolutely, such as `mount(2)`
/// data naming many overlay layers.
public enum ThreadWorkingDirectory {
    private final class Job {
        let directory: FileDescriptor
        let body: () -> Errno?
        var error: Errno?
        init(directory: FileDescriptor, body: @escaping () -> Errno?) {
            self.directory = directory
            self.body = body
        }
    }

    private typealias UnshareFunction = @convention(c) (Int32) -> Int32
    private static let cloneFS: Int32 = 0x0000_0200

    /// `unshare(2)`, looked up at run time (Glibc's header hides it from Swift).
    private static let unshare: UnshareFunction? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return nil }
        return unsafeBitCast(symbol, to: UnshareFunction.self)
    }()

    /// Runs `body` on a fresh thread whose working directory is `directory`; returns its error.
    ///
    /// The corresponding C functions are `unshare(CLONE_FS)` and `fchdir`.
    public static func run(in directory: FileDescriptor, _ body: @escaping () -> Errno?) throws(Errno) {
        guard unshare != nil else { throw Errno.noFunction }
        let job = Job(directory: directory, body: body)
        let thread = try JoinableThread.start {
            if ThreadWorkingDirectory.unshare!(ThreadWorkingDirectory.cloneFS) != 0 {
                job.error = Errno(rawValue: errno)
            } else if fchdir(job.directory.rawValue) != 0 {
                job.error = Errno(rawValue: errno)
            } else {
                job.error = job.body()
            }
        }
        thread.join()
        if let error = job.error { throw error }
    }
}
