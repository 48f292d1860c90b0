import CArchive
import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

/// The header the exporter fills for ``ArchiveWriter``: libarchive's one `archive_entry`,
/// cleared and refilled for every entry (no allocation per entry). Its setters are libarchive's,
/// one each, so that the `archive_entry_*` calls stay in the archive types.
struct TarHeader {
    let entry: OpaquePointer

    /// Empties the header for the next entry. The corresponding C function is `archive_entry_clear`.
    @inline(__always) func clear() { archive_entry_clear(entry) }

    /// The file type bits (`S_IFREG`, `S_IFDIR`, …). The corresponding C function is
    /// `archive_entry_set_filetype`.
    @inline(__always) func setFileType(_ type: mode_t) { archive_entry_set_filetype(entry, UInt32(type)) }

    /// The permission bits. The corresponding C function is `archive_entry_set_perm`.
    @inline(__always) func setPermissions(_ permissions: mode_t) { archive_entry_set_perm(entry, permissions) }

    /// The size of the data that follows. The corresponding C function is `archive_entry_set_size`.
    @inline(__always) func setSize(_ size: Int64) { archive_entry_set_size(entry, size) }

    /// The modification time. The corresponding C function is `archive_entry_set_mtime`.
    @inline(__always) func setModificationTime(_ seconds: Int, _ nanoseconds: Int) {
        archive_entry_set_mtime(entry, seconds, nanoseconds)
    }

    /// The owner, as container IDs. The corresponding C functions are `archive_entry_set_uid`
    /// and `archive_entry_set_gid`.
    @inline(__always) func setOwner(uid: UInt32, gid: UInt32) {
        archive_entry_set_uid(entry, la_int64_t(uid))
        archive_entry_set_gid(entry, la_int64_t(gid))
    }

    /// The device numbers of a block or character device. The corresponding C functions are
    /// `archive_entry_set_rdevmajor` and `archive_entry_set_rdevminor`.
    @inline(__always) func setDevice(major: dev_t, minor: dev_t) {
        archive_entry_set_rdevmajor(entry, major)
        archive_entry_set_rdevminor(entry, minor)
    }

    /// The entry's name (bytes, NUL-terminated), copied. The corresponding C function is
    /// `archive_entry_copy_pathname`.
    @inline(__always) func copyPathname(_ name: UnsafePointer<CChar>) { archive_entry_copy_pathname(entry, name) }

    /// A hard link's target name, copied. The corresponding C function is
    /// `archive_entry_copy_hardlink`.
    @inline(__always) func copyHardlink(_ target: UnsafePointer<CChar>) { archive_entry_copy_hardlink(entry, target) }

    /// A symbolic link's target, copied. The corresponding C function is `archive_entry_copy_symlink`.
    @inline(__always) func copySymlink(_ target: UnsafePointer<CChar>) { archive_entry_copy_symlink(entry, target) }

    /// Adds an extended attribute (written as a `SCHILY.xattr.*` record). The corresponding C
    /// function is `archive_entry_xattr_add_entry`.
    @inline(__always) func addXattr(_ name: UnsafePointer<CChar>, _ value: UnsafeRawPointer?, _ length: Int) {
        archive_entry_xattr_add_entry(entry, name, value, length)
    }

    /// Adds a POSIX.1e ACL entry of `type` (access or default); `id` is -1 for an entry that
    /// names no user or group. The corresponding C function is `archive_entry_acl_add_entry`.
    @inline(__always) func addACLEntry(_ type: Int32, _ permissions: Int32, _ tag: Int32, _ id: Int32) {
        archive_entry_acl_add_entry(entry, type, permissions, tag, id, nil)
    }
}

extension PosixACL.Tag {
    /// The kernel's ACL tags and libarchive's, one table for reading and writing.
    private static let archiveTags: [(tag: PosixACL.Tag, archive: Int32)] = [
        (.userObject, ARCHIVE_ENTRY_ACL_USER_OBJ), (.user, ARCHIVE_ENTRY_ACL_USER),
        (.groupObject, ARCHIVE_ENTRY_ACL_GROUP_OBJ), (.group, ARCHIVE_ENTRY_ACL_GROUP),
        (.mask, ARCHIVE_ENTRY_ACL_MASK), (.other, ARCHIVE_ENTRY_ACL_OTHER),
    ]

    /// The tag for libarchive's `archive`; `nil` for one with no POSIX.1e equivalent.
    init?(archiveTag archive: Int32) {
        guard let pair = Self.archiveTags.first(where: { $0.archive == archive }) else { return nil }
        self = pair.tag
    }

    /// libarchive's tag for this one.
    var archiveTag: Int32 { Self.archiveTags.first { $0.tag == self }!.archive }
}
