import CArchive
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One tar header, copied out of libarchive's `archive_entry` into Swift values.
struct TarEntry {
    /// The entry's name exactly as the stream has it (bytes; need not be UTF-8).
    var rawPath: [UInt8]
    /// A hardlink's target name, as the stream has it.
    var rawHardlinkTarget: [UInt8]?
    /// A symlink's target text.
    var symlinkTarget: [UInt8]?
    var kind: FileKind
    var permissions: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    var modificationTime: FileTime
    var accessTime: FileTime
    var deviceMajor: UInt32
    var deviceMinor: UInt32
    /// Extended attributes from PAX `SCHILY.xattr.*` (and libarchive's own) records.
    var xattrs: [(name: String, value: [UInt8])]
    /// POSIX ACLs from PAX `SCHILY.acl.*` records, already encoded as the kernel's xattr values.
    var accessACL: [UInt8]?
    var defaultACL: [UInt8]?

    init(_ entry: OpaquePointer) {
        rawPath = archive_entry_pathname(entry).map(Self.bytes) ?? []
        rawHardlinkTarget = archive_entry_hardlink(entry).map(Self.bytes)
        let mode = archive_entry_mode(entry)
        kind = rawHardlinkTarget != nil ? .regular : FileKind(mode: mode_t(mode))
        if kind == .symlink {
            symlinkTarget = archive_entry_symlink(entry).map(Self.bytes) ?? []
        }
        permissions = UInt32(mode) & 0o7777
        uid = UInt32(truncatingIfNeeded: archive_entry_uid(entry))
        gid = UInt32(truncatingIfNeeded: archive_entry_gid(entry))
        size = archive_entry_size_is_set(entry) != 0 ? Int64(archive_entry_size(entry)) : 0
        modificationTime = FileTime(
            seconds: Int64(archive_entry_mtime(entry)), nanoseconds: Int64(archive_entry_mtime_nsec(entry)))
        accessTime = archive_entry_atime_is_set(entry) != 0
            ? FileTime(seconds: Int64(archive_entry_atime(entry)), nanoseconds: Int64(archive_entry_atime_nsec(entry)))
            : modificationTime
        deviceMajor = UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry))
        deviceMinor = UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry))

        xattrs = []
        if archive_entry_xattr_reset(entry) > 0 {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var length = 0
            while archive_entry_xattr_next(entry, &name, &value, &length) == ARCHIVE_OK {
                guard let name else { continue }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
                xattrs.append((String(cString: name), bytes))
            }
        }
        if archive_entry_acl_count(entry, ARCHIVE_ENTRY_ACL_TYPE_POSIX1E) > 0 {
            accessACL = Self.posixACL(entry, type: ARCHIVE_ENTRY_ACL_TYPE_ACCESS)
            defaultACL = Self.posixACL(entry, type: ARCHIVE_ENTRY_ACL_TYPE_DEFAULT)
        }
    }

    /// The path as text for messages (invalid UTF-8 shown with replacement characters).
    var pathDescription: String { String(decoding: rawPath, as: UTF8.self) }

    private static func bytes(_ p: UnsafePointer<CChar>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: p, count: strlen(p)))
    }

    /// The host's uid for a user name, as GNU tar resolves ACL names on extraction.
    private static func userID(named name: UnsafePointer<CChar>) -> UInt32? {
        var entry = passwd(), result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    /// The host's gid for a group name.
    private static func groupID(named name: UnsafePointer<CChar>) -> UInt32? {
        var entry = group(), result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// Reads libarchive's parsed ACL entries of one type into the kernel's xattr encoding; `nil`
    /// (the ACL is left out) when an entry names a user or group this host does not know.
    private static func posixACL(_ entry: OpaquePointer, type: Int32) -> [UInt8]? {
        guard archive_entry_acl_reset(entry, type) > 0 else { return nil }
        var acl = PosixACL()
        var entryType: Int32 = 0, permset: Int32 = 0, tag: Int32 = 0, qualifier: Int32 = 0
        var name: UnsafePointer<CChar>?
        while archive_entry_acl_next(entry, type, &entryType, &permset, &tag, &qualifier, &name) == ARCHIVE_OK {
            guard let tagValue = PosixACL.Tag(archiveTag: tag) else { continue }
            let named = tagValue == .user || tagValue == .group
            var id = PosixACL.undefinedID
            if named {
                if qualifier >= 0 {
                    id = UInt32(bitPattern: qualifier)
                } else if let name, let resolved = tagValue == .user ? Self.userID(named: name) : Self.groupID(named: name) {
                    // GNU tar writes ACL entries by name; like GNU tar, resolve them on this host.
                    id = resolved
                } else {
                    return nil
                }
            }
            acl.entries.append(.init(tag: tagValue, permissions: UInt16(permset & 0o7), id: id))
        }
        return acl.entries.isEmpty ? nil : acl.encoded()
    }
}
