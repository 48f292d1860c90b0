import CArchive
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The entries that stand for something other than a file on disk: whiteouts, opaque-directory
/// markers and hard links.
extension ExportSession {
    /// Writes a whiteout entry `.wh.NAME` for `path`: an empty regular file with mode 0.
    func writeDeletion() throws(StorageError) {
        let entry = writer.header
        entry.clear()
        setWhiteoutPathname()
        entry.setFileType(S_IFREG)
        entry.setPermissions(0)
        entry.setSize(0)
        entry.setModificationTime(0, 0)
        try writer.writeHeader(path: pathDescription)
    }

    /// Sets the pathname to `path` with `.wh.` before its last component.
    func setWhiteoutPathname() {
        let slash = path.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0
        var name = Array(path[..<slash])
        name.append(contentsOf: Whiteout.prefix)
        name.append(contentsOf: path[slash...])
        name.append(0)
        name.withUnsafeBufferPointer { p in
            writer.header.copyPathname(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
    }

    /// An overlay whiteout (character device 0/0) becomes `.wh.NAME`: an empty regular file with
    /// mode 0, keeping the owner and mtime.
    func writeWhiteout(_ status: FileStatus) throws(StorageError) {
        let entry = writer.header
        entry.clear()
        setWhiteoutPathname()
        // A whiteout's owner means nothing (the kernel gives it the deleting process's IDs):
        // one outside the mapping is written as 0:0 rather than failing the export.
        // (Overlayfs makes every whiteout as the mounter, host 0:0.)
        let owner = options.idMappings.toContainer(uid: status.userID.rawValue, gid: status.groupID.rawValue) ?? (0, 0)
        entry.setOwner(uid: owner.uid, gid: owner.gid)
        entry.setFileType(S_IFREG)
        entry.setPermissions(0)
        entry.setSize(0)
        entry.setModificationTime(Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }

    /// The data of the metacopy file at `path` (or at its `redirect`: an absolute path in the
    /// layer, or a name in the same directory): the first lower file there that is not itself
    /// a metacopy. `nil` when the lowers hold no such file.
    func lowerData(redirect: [UInt8]?) throws(StorageError) -> FileDescriptor? {
        guard let lowers else { return nil }
        var target = path
        if let redirect, !redirect.isEmpty {
            if redirect.first == UInt8(ascii: "/") {
                target = Array(redirect.dropFirst())
            } else {
                target = Array(path[..<(path.lastIndex(of: UInt8(ascii: "/")).map { $0 + 1 } ?? 0)]) + redirect
            }
        }
        let slash = target.lastIndex(of: UInt8(ascii: "/"))
        let directoryPath = slash.map { Array(target[..<$0]) } ?? []
        let view: LowerView
        if directoryPath.isEmpty {
            view = lowers
        } else {
            guard let inside = try lowers.resolve(directoryPath)?.inside else { return nil }
            view = inside
        }
        var name = (slash.map { Array(target[($0 + 1)...]) } ?? target).map { CChar(bitPattern: $0) }
        name.append(0)
        return try name.withUnsafeBufferPointer { n throws(StorageError) -> FileDescriptor? in
            for directory in view.directories {
                do throws(Errno) {
                    let status = try directory.status(atRawName: n.baseAddress!)
                    if status.isOverlayWhiteout || status.kind != .regular { return nil }
                    let file = try directory.open(atRawName: n.baseAddress!, flags: O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
                    if try Self.isMetacopy(file) {
                        file.closeQuietly()
                        continue
                    }
                    return file
                } catch .noSuchFileOrDirectory {
                    continue
                } catch {
                    throw StorageError("export layer: read the data of a metacopy file", path: pathDescription, errno: error)
                }
            }
            return nil
        }
    }

    /// Whether the open file is an overlay metacopy file (its data is in a lower layer).
    static func isMetacopy(_ file: FileDescriptor) throws(Errno) -> Bool {
        for name in ["trusted.overlay.metacopy", "user.overlay.metacopy"] where try file.extendedAttribute(name) != nil {
            return true
        }
        return false
    }

    /// Whether the lowers show a directory at `path`.
    func existsAsLowerDirectory() throws(StorageError) -> Bool {
        guard let lowers, !lowers.directories.isEmpty else { return false }
        return try lowers.resolve(path)?.status.kind == .directory
    }

    /// Writes `PATH/.wh..wh..opq` after an opaque directory: an empty regular file with the
    /// directory's owner, permission bits and mtime.
    func writeOpaqueMarker(_ status: FileStatus, uid: UInt32, gid: UInt32, permissions: UInt32) throws(StorageError) {
        let entry = writer.header
        entry.clear()
        var name = path
        name.append(UInt8(ascii: "/"))
        name.append(contentsOf: Whiteout.opaqueMarker)
        name.append(0)
        name.withUnsafeBufferPointer { p in
            entry.copyPathname(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        try setOwner(uid: uid, gid: gid)
        entry.setFileType(S_IFREG)
        entry.setPermissions(mode_t(permissions & 0o777))
        entry.setSize(0)
        entry.setModificationTime(Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }

    func writeHardLink(to target: [UInt8], status: FileStatus) throws(StorageError) {
        let entry = writer.header
        setPathname()
        var link = target
        link.append(0)
        link.withUnsafeBufferPointer { p in
            entry.copyHardlink(UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        entry.setFileType(S_IFREG)
        entry.setPermissions(mode_t(status.mode & 0o7777))
        entry.setSize(0)
        entry.setModificationTime(Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }
}
