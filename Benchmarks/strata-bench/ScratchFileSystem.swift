import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A fresh ext4 filesystem in a sparse image file, loop-mounted under the work directory for one
/// timed run (or one fixture), and removed without a trace by `tearDown()`.
final class ScratchFileSystem {
    let image: String
    let mountPoint: String
    private var mounted = false

    /// Where scratch images and their mount points live.
    static func scratchDirectory(_ workDirectory: String) -> String { workDirectory + "/scratch" }

    init(workDirectory: String, name: String, size: Int64) throws {
        let scratch = Self.scratchDirectory(workDirectory)
        mkdir(scratch, 0o755)
        image = "\(scratch)/\(name).img"
        mountPoint = "\(scratch)/\(name)"
        unlink(image)
        let fd = open(image, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else {
            throw BenchError("cannot make image \(image): \(String(cString: strerror(errno)))")
        }
        close(fd)
        do {
            // Initialise inode tables and journal now, so no background ext4lazyinit thread
            // writes during the timed run.
            try Shell.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", image])
            mkdir(mountPoint, 0o755)
            try Shell.run(["mount", "-o", "loop", image, mountPoint])
            mounted = true
        } catch {
            tearDown()
            throw error
        }
    }

    /// `mountPoint/name`.
    func path(_ name: String) -> String { "\(mountPoint)/\(name)" }

    /// Unmounts (the loop device goes with it: mount -o loop sets autoclear) and deletes the image.
    func tearDown() {
        if mounted {
            do { try Mounts.unmount(FilePath(mountPoint)) } catch {
                try? Mounts.unmount(FilePath(mountPoint), flags: .detach)
            }
            mounted = false
        }
        rmdir(mountPoint)
        unlink(image)
    }

    deinit { tearDown() }

    /// Unmounts and deletes whatever an interrupted earlier run left in the scratch directory.
    static func removeLeftovers(workDirectory: String) {
        let scratch = scratchDirectory(workDirectory)
        let prefix = scratch + "/"
        for entry in Mounts.mountTable().reversed() where entry.mountPoint.hasPrefix(prefix) {
            try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
        }
        try? FileDescriptor.currentWorkingDirectory.removeTree(at: FilePath(scratch))
    }
}
