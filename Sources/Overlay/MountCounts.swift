import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// How many `get`s of each layer are outstanding, kept in the run home so that separate
/// processes share them: `<runhome>/mounts/<id>` holds the count as decimal text, and an
/// exclusive `flock` on that same file is the layer's lock for mounting, unmounting, applying
/// and removing.
///
/// The run home is normally a tmpfs, so counts vanish at reboot together with the mounts they
/// count. A count is only trusted while the mount it counts is really there: when something
/// else unmounted the layer, the count is reset (`MountedLayer.resync`).
struct MountCounts: Sendable {
    /// `<runhome>/mounts`.
    let directory: FilePath

    init(runHome: FilePath) throws(StorageError) {
        directory = runHome.appending("mounts")
        let dir = directory
        try attempt("make mount count directory", dir) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.makeDirectoryIfMissing(at: dir)
        }
    }

    /// Takes the layer's lock and reads its count.
    func lock(_ id: LayerID) throws(StorageError) -> LockedMountCount {
        let path = directory.appending(id.rawValue)
        let lock = try attempt("lock layer \(id)", path) { () throws(Errno) in try FileLock.acquire(path) }
        return LockedMountCount(lock: lock)
    }
}

/// A layer's lock, held, with its mount count.
final class LockedMountCount {
    let lock: FileLock
    /// The count as last read or written.
    private(set) var count: Int

    init(lock: FileLock) {
        self.lock = lock
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = (try? buffer.withUnsafeMutableBytes { try lock.descriptor.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        count = n > 0 ? Int(String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").first ?? "") ?? 0 : 0
    }

    /// Stores a new count.
    func set(_ value: Int) throws(StorageError) {
        let bytes = Array("\(max(0, value))\n".utf8)
        let fd = lock.descriptor
        try attempt("save mount count", lock.path) { () throws(Errno) in
            let written: Result<Void, Errno> = bytes.withUnsafeBytes { b in
                Result { () throws(Errno) in try fd.writeFully(b, atOffset: 0) }
            }
            try written.get()
            try fd.truncate(to: Int64(bytes.count))
        }
        count = max(0, value)
    }
}
