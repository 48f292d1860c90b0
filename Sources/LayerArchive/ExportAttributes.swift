import GraphDriver
import StrataSystem

#if canImport(Glibc)
import Glibc
#endif

/// Which extended attributes a layer tar carries, and how their values change on the way out.
enum ExportAttribute {
    /// `security.capability`: file capabilities; a v3 value for the container's root is written as v2.
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
    /// `trusted.overlay.redirect` / `user.overlay.redirect`: where a renamed metacopy file's
    /// data is found in the lower layers.
    case redirect
    /// Everything else (`trusted.*`, `security.selinux`, `user.overlay.*`…): not written.
    case skipped

    /// Classifies a NUL-terminated xattr name.
    static func classify(_ name: UnsafePointer<CChar>) -> ExportAttribute {
        if strncmp(name, "user.", 5) == 0 {
            if strcmp(name, "user.overlay.opaque") == 0 { return .overlayOpaque }
            if strcmp(name, "user.overlay.metacopy") == 0 { return .metacopy }
            if strcmp(name, "user.overlay.redirect") == 0 { return .redirect }
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
        if strcmp(name, "trusted.overlay.redirect") == 0 { return .redirect }
        return .skipped
    }
}

extension FileCapability {
    /// The size of a v2 value: magic/flags and two {permitted, inheritable} pairs.
    static let version2Size = 20
    /// The size of a v3 value: v2 plus the namespace root ID.
    static let version3Size = 24

    /// A capability as a layer stream carries it, in place: a v3 value (24 bytes) whose root ID
    /// is the container's root under `mappings` becomes the 20-byte v2 form (the root ID is
    /// implied by the namespace the layer is unpacked in); a v3 value that belongs to another
    /// namespace keeps its v3 form with the root ID mapped to the container's view, so that it
    /// is never widened into a capability for any root. Returns the length to write, or `nil`
    /// when the root ID has no ID in the container.
    static func exported(_ value: UnsafeMutableRawBufferPointer, mappings: IDMappings) -> Int? {
        guard value.count >= version3Size else { return value.count }
        let magic = UInt32(littleEndian: value.loadUnaligned(as: UInt32.self))
        guard magic & revisionMask == revision3 else { return value.count }
        let hostRoot = UInt32(littleEndian: value.loadUnaligned(fromByteOffset: 20, as: UInt32.self))
        guard let containerRoot = IDMappings.containerID(hostRoot, mappings.uidMap) else { return nil }
        if containerRoot == 0 {
            value.storeBytes(of: ((magic & ~revisionMask) | revision2).littleEndian, as: UInt32.self)
            return version2Size
        }
        value.storeBytes(of: containerRoot.littleEndian, toByteOffset: 20, as: UInt32.self)
        return version3Size
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
    static func mapToContainer(_ value: UnsafeMutableRawBufferPointer, _ mappings: IDMappings,
                               unmapped: UnmappedExportIDPolicy = .fail) -> (id: UInt32, user: Bool)? {
        if mappings.isIdentity { return nil }
        var offset = 4
        while offset + 8 <= value.count {
            let tag = UInt16(littleEndian: value.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            if tag == userTag || tag == groupTag {
                let id = UInt32(littleEndian: value.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let user = tag == userTag
                var mapped = IDMappings.containerID(id, user ? mappings.uidMap : mappings.gidMap)
                if mapped == nil, case .useOverflowID(let uid, let gid) = unmapped { mapped = user ? uid : gid }
                guard let mapped else { return (id, user) }
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
