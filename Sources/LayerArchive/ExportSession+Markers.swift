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
        let entry = writer.entry
        archive_entry_clear(entry)
        setWhiteoutPathname()
        archive_entry_set_filetype(entry, S_IFREG)
        archive_entry_set_perm(entry, 0)
        archive_entry_set_size(entry, 0)
        archive_entry_set_mtime(entry, 0, 0)
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
            archive_entry_copy_pathname(writer.entry, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
    }

    /// An overlay whiteout (character device 0/0) becomes `.wh.NAME`: an empty regular file with
    /// mode 0, keeping the owner and mtime.
    func writeWhiteout(_ status: FileStatus) throws(StorageError) {
        let entry = writer.entry
        archive_entry_clear(entry)
        setWhiteoutPathname()
        // A whiteout's owner means nothing (the kernel gives it the deleting process's IDs):
        // one outside the mapping is written as 0:0 rather than failing the export.
        let owner = options.idMappings.toContainer(uid: status.userID.rawValue, gid: status.groupID.rawValue) ?? (0, 0)
        archive_entry_set_uid(entry, la_int64_t(owner.uid))
        archive_entry_set_gid(entry, la_int64_t(owner.gid))
        archive_entry_set_filetype(entry, S_IFREG)
        archive_entry_set_perm(entry, 0)
        archive_entry_set_size(entry, 0)
        archive_entry_set_mtime(entry, Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }

    /// Whether the lowers show a directory at `path`.
    func existsAsLowerDirectory() throws(StorageError) -> Bool {
        guard let lowers, !lowers.directories.isEmpty else { return false }
        return try lowers.resolve(path)?.status.kind == .directory
    }

    /// Writes `PATH/.wh..wh..opq` after an opaque directory: an empty regular file with the
    /// directory's owner, permission bits and mtime.
    func writeOpaqueMarker(_ status: FileStatus, uid: UInt32, gid: UInt32, permissions: UInt32) throws(StorageError) {
        let entry = writer.entry
        archive_entry_clear(entry)
        var name = path
        name.append(UInt8(ascii: "/"))
        name.append(contentsOf: Whiteout.opaqueMarker)
        name.append(0)
        name.withUnsafeBufferPointer { p in
            archive_entry_copy_pathname(entry, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        try setOwner(uid: uid, gid: gid)
        archive_entry_set_filetype(entry, S_IFREG)
        archive_entry_set_perm(entry, mode_t(permissions & 0o777))
        archive_entry_set_size(entry, 0)
        archive_entry_set_mtime(entry, Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }

    func writeHardLink(to target: [UInt8], status: FileStatus) throws(StorageError) {
        let entry = writer.entry
        setPathname()
        var link = target
        link.append(0)
        link.withUnsafeBufferPointer { p in
            archive_entry_copy_hardlink(entry, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        archive_entry_set_filetype(entry, S_IFREG)
        archive_entry_set_perm(entry, mode_t(status.mode & 0o7777))
        archive_entry_set_size(entry, 0)
        archive_entry_set_mtime(entry, Int(status.modificationTime.seconds), Int(status.modificationTime.nanoseconds))
        try writer.writeHeader(path: pathDescription)
    }
}
