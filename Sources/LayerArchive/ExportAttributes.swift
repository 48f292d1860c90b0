import GraphDriver

#if canImport(Glibc)
import Glibc
#endif

/// Which extended attributes a layer tar carries, and how their values change on the way out.
enum ExportAttribute {
    /// `security.capability`: file capabilities; a v3 value is written as v2.
    case capability
    /// `system.posix_acl_access` / `system.posix_acl_default`: ACL entries' IDs are mapped.
    case accessControlList
    /// Written as it is: `security.ima`, `user.*` (not `user.overlay.*`).
    case verbatim
    /// `user.containers.override_stat`: read for the owner and mode, never written.
    case overrideStat
    /// `trusted.overlay.opaque` (or `user.overlay.opaque`, from an overlay mounted with
    /// `userxattr`): read to find opaque directories, never written.
    case overlayOpaque
    /// `trusted.overlay.metacopy` / `user.overlay.metacopy`: the file's data is in a lower layer.
    case metacopy
    /// Everything else (`trusted.*`, `security.selinux`, `user.overlay.*`…): not written.
    case skipped

    /// Classifies a NUL-terminated xattr name.
    static func classify(_ name: UnsafePointer<CChar>) -> ExportAttribute {
        if strncmp(name, "user.", 5) == 0 {
            if strcmp(name, "user.overlay.opaque") == 0 { return .overlayOpaque }
            if strcmp(name, "user.overlay.metacopy") == 0 { return .metacopy }
            if strncmp(name, "user.overlay.", 13) == 0 { return .skipped }
            if strcmp(name, overrideStatName) == 0 { return .overrideStat }
            return .verbatim
        }
        if strcmp(name, "security.capability") == 0 { return .capability }
        if strcmp(name, "security.ima") == 0 { return .verbatim }
        if strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0 {
            return .accessControlList
        }
        if strcmp(name, "trusted.overlay.opaque") == 0 { return .overlayOpaque }
        if strcmp(name, "trusted.overlay.metacopy") == 0 { return .metacopy }
        return .skipped
    }

    /// The xattr `ApplyOptions.forceMask` leaves the real owner and mode in.
    static let overrideStatName = "user.containers.override_stat"
}

/// File capabilities (`security.capability`, `struct vfs_ns_cap_data`).
enum FileCapability {
    static let revisionMask: UInt32 = 0xFF00_0000
    static let revision2: UInt32 = 0x0200_0000
    static let revision3: UInt32 = 0x0300_0000
    /// The size of a v2 value: magic/flags and two {permitted, inheritable} pairs.
    static let version2Size = 20
    /// The size of a v3 value: v2 plus the namespace root ID.
    static let version3Size = 24

    /// The value to export: a v3 value (24 bytes, with a root ID) becomes the 20-byte v2 form,
    /// keeping the effective flag and the capability sets and dropping the root ID, as
    /// containers/storage does; other values pass as they are.
    static func exported(_ value: UnsafeMutableRawBufferPointer) -> Int {
        guard value.count >= version3Size else { return value.count }
        let magic = UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
        guard magic & revisionMask == revision3 else { return value.count }
        value.storeBytes(of: ((magic & ~revisionMask) | revision2).littleEndian, as: UInt32.self)
        return version2Size
    }
}

/// POSIX ACLs as the kernel stores them in `system.posix_acl_*`: a 4-byte version (2), then
/// 8-byte entries `{u16 tag, u16 permissions, u32 id}`.
enum PosixACL {
    static let userTag: UInt16 = 0x02
    static let groupTag: UInt16 = 0x08

    /// Calls `body` with each entry's tag, permission bits (rwx as 4/2/1) and ID.
    static func forEachEntry(_ value: UnsafeRawBufferPointer, _ body: (_ tag: UInt16, _ permissions: UInt16, _ id: UInt32) -> Void) {
        var offset = 4
        while offset + 8 <= value.count {
            body(UInt16(littleEndian: value.loadUnaligned(fromByteOffset: offset, as: UInt16.self)),
                 UInt16(littleEndian: value.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self)),
                 UInt32(littleEndian: value.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
            offset += 8
        }
    }

    /// Maps the IDs of the named-user and named-group entries from host to container; returns
    /// the first ID that has no container ID (`user` tells which map) when one fails.
    static func mapToContainer(_ value: UnsafeMutableRawBufferPointer, _ mappings: IDMappings) -> (id: UInt32, user: Bool)? {
        if mappings.isIdentity { return nil }
        var offset = 4
        while offset + 8 <= value.count {
            let tag = UInt16(littleEndian: value.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            if tag == userTag || tag == groupTag {
                let id = UInt32(littleEndian: value.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let user = tag == userTag
                guard let mapped = IDMappings.containerID(id, user ? mappings.uidMap : mappings.gidMap) else {
                    return (id, user)
                }
                value.storeBytes(of: mapped.littleEndian, toByteOffset: offset + 4, as: UInt32.self)
            }
            offset += 8
        }
        return nil
    }
}

/// The owner and mode recorded in `user.containers.override_stat` (`uid:gid:mode[:type]`, mode
/// in octal), as host IDs: the same IDs `chown` would have given the file without a force mask.
struct OverrideStat: Equatable {
    var uid: UInt32
    var gid: UInt32
    var permissions: UInt32

    /// Parses the xattr value; `nil` when it is malformed.
    init?(_ value: UnsafeRawBufferPointer) {
        let parts = value.split(separator: UInt8(ascii: ":"), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3,
              let uid = UInt32(String(decoding: parts[0], as: UTF8.self)),
              let gid = UInt32(String(decoding: parts[1], as: UTF8.self)),
              let mode = UInt32(String(decoding: parts[2], as: UTF8.self), radix: 8)
        else { return nil }
        self.uid = uid
        self.gid = gid
        self.permissions = mode & 0o7777
    }
}
