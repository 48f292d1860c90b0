import GraphDriver
import StrataSystem

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
            if strcmp(name, OverrideStat.xattrName) == 0 { return .overrideStat }
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
}

extension FileCapability {
    /// The size of a v2 value: magic/flags and two {permitted, inheritable} pairs.
    static let version2Size = 20
    /// The size of a v3 value: v2 plus the namespace root ID.
    static let version3Size = 24

    /// `asRevision2(_:)` in place, for the export path that reads into a reused buffer: a v3
    /// value (24 bytes, with a root ID) becomes the 20-byte v2 form, keeping the effective flag
    /// and the capability sets and dropping the root ID, as containers/storage does. Returns the
    /// length of the value to write.
    static func exported(_ value: UnsafeMutableRawBufferPointer) -> Int {
        guard value.count >= version3Size else { return value.count }
        let magic = UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
        guard magic & revisionMask == revision3 else { return value.count }
        value.storeBytes(of: ((magic & ~revisionMask) | revision2).littleEndian, as: UInt32.self)
        return version2Size
    }
}

/// In-place work on the kernel's binary ACL form (`system.posix_acl_*`: a 4-byte version, then
/// 8-byte entries `{u16 tag, u16 permissions, u32 id}`) for the export path, which reads every
/// value into one reused buffer.
extension PosixACL {
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

extension OverrideStat {
    /// Parses the xattr value `uid:gid:mode[:type]` (mode in octal; type `file`, `dir`,
    /// `symlink`, `pipe`, `socket`, `block-MAJ-MIN`, `char-MAJ-MIN`); `nil` when malformed.
    /// The IDs are host IDs: the owner `chown` would have given the file without a force mask.
    init?(parsing value: UnsafeRawBufferPointer) {
        let parts = value.split(separator: UInt8(ascii: ":"), maxSplits: 3, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard parts.count >= 3, let uid = UInt32(parts[0]), let gid = UInt32(parts[1]),
              let mode = UInt32(parts[2], radix: 8) else { return nil }
        var kind = StrataSystem.FileKind.regular
        var major: UInt32 = 0, minor: UInt32 = 0
        if parts.count > 3 {
            let type = parts[3].split(separator: "-")
            switch type.first {
            case "file": kind = .regular
            case "dir": kind = .directory
            case "symlink": kind = .symlink
            case "pipe": kind = .fifo
            case "socket": kind = .socket
            case "block", "char":
                guard type.count >= 3, let a = UInt32(type[1]), let b = UInt32(type[2]) else { return nil }
                kind = type.first == "block" ? .blockDevice : .characterDevice
                major = a
                minor = b
            default: return nil
            }
        }
        self.init(uid: uid, gid: gid, permissions: mode & 0o7777, kind: kind, deviceMajor: major, deviceMinor: minor)
    }
}
