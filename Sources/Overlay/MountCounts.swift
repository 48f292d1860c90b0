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
///
/// It owns the run home's descriptor, which the other files of the run home are reached
/// through too (see `RunHomeLayout`).
final class MountCounts: @unchecked Sendable {
    /// `<runhome>`, open.
    let runHome: FileDescriptor
    /// `<runhome>/mounts`.
    let directory: FilePath

    /// Takes over `runDirectory` (the run home at `runHomePath`, closed with this object or
    /// when this fails) and makes `mounts` in it.
    init(runHome runHomePath: FilePath, runDirectory: FileDescriptor) throws(StorageError) {
        runHome = runDirectory
        directory = runHomePath.appending(RunHomeLayout.mounts)
        do throws(Errno) {
            try runDirectory.makeDirectoryIfMissing(at: FilePath(RunHomeLayout.mounts))
        } catch {
            runDirectory.closeQuietly()
            throw StorageError("make mount count directory", path: directory.string, errno: error)
        }
    }

    deinit { runHome.closeQuietly() }

    /// `mounts/<id>`, relative to the run home.
    func name(of id: LayerID) -> FilePath { FilePath(RunHomeLayout.mounts + "/" + id.rawValue) }

    /// Takes the layer's lock and reads its count.
    func lock(_ id: LayerID) throws(StorageError) -> LockedMountCount {
        let path = directory.appending(id.rawValue)
        let lock = try attempt("lock layer \(id)", path) { () throws(Errno) in
            try FileLock.acquire(name(of: id), in: runHome, path: path)
        }
        return LockedMountCount(lock: lock)
    }

    /// Runs `body` holding the layer's lock, with its count.
    func withLock<T>(_ id: LayerID, _ body: (LockedMountCount) throws(StorageError) -> T) throws(StorageError) -> T {
        let count = try lock(id)
        return try count.lock.holding { () throws(StorageError) in try body(count) }
    }

    /// Removes the layer's count file (and so its count), if there is one.
    func remove(_ id: LayerID) throws(Errno) { try remove(named: id.rawValue) }

    /// Removes a count file by name (one whose name is no layer ID included), if it is there.
    func remove(named name: String) throws(Errno) {
        do throws(Errno) { try runHome.remove(at: FilePath(RunHomeLayout.mounts + "/" + name)) } catch .noSuchFileOrDirectory {}
    }

    /// The count a layer's file holds (0 when it has none).
    func read(_ id: LayerID) -> Int {
        guard let text = try? runHome.readText(at: name(of: id)) else { return 0 }
        return Int(text.split(separator: "\n").first ?? "") ?? 0
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
