import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An advisory `flock(2)` lock on a file, held until the object goes away.
///
/// Each acquisition opens the file anew, so two threads of one process exclude each other just
/// as two processes do. A lock file may be unlinked by a holder (when a layer is removed);
/// acquiring checks that the locked inode is still the one at the path, and retries if not.
final class FileLock: @unchecked Sendable {
    let descriptor: FileDescriptor
    let path: FilePath

    private init(descriptor: FileDescriptor, path: FilePath) {
        self.descriptor = descriptor
        self.path = path
    }

    /// Waits for the lock on `name` relative to `directory` (created when missing); `path` is
    /// its absolute path, for messages.
    static func acquire(_ name: FilePath, in directory: FileDescriptor, path: FilePath, exclusive: Bool = true,
                        wait: Bool = true) throws(Errno) -> FileLock {
        while true {
            let fd = try directory.open(at: name, flags: O_RDWR | O_CREAT | O_NOFOLLOW, permissions: 0o600)
            do throws(Errno) {
                try fd.lock(exclusive: exclusive, wait: wait)
                let held = try fd.status()
                let current = try? directory.status(at: name)
                if let current, current.inode == held.inode, current.device == held.device {
                    return FileLock(descriptor: fd, path: path)
                }
            } catch {
                fd.closeQuietly()
                throw error
            }
            fd.closeQuietly()
        }
    }

    /// Tries the lock without waiting; `nil` when someone else holds it.
    static func tryAcquire(_ name: FilePath, in directory: FileDescriptor, path: FilePath,
                           exclusive: Bool = true) throws(Errno) -> FileLock? {
        do throws(Errno) {
            return try acquire(name, in: directory, path: path, exclusive: exclusive, wait: false)
        } catch .wouldBlock {
            return nil
        }
    }

    /// Runs `body` with the lock held: it is released (when nothing else holds this object)
    /// only once `body` returns.
    func holding<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        try withExtendedLifetime(self) { () throws(E) in try body() }
    }

    deinit { descriptor.closeQuietly() }
}
