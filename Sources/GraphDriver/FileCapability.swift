/// `security.capability` values: the kernel's `vfs_cap_data`, revision 2 (20 bytes) or revision 3
/// (24 bytes, with the root ID of the user namespace the capability belongs to).
public enum FileCapability {
    /// The bits of the first word that hold the revision.
    public static let revisionMask: UInt32 = 0xFF00_0000
    /// `VFS_CAP_REVISION_2`: no root ID.
    public static let revision2: UInt32 = 0x0200_0000
    /// `VFS_CAP_REVISION_3`: with the root ID of its user namespace.
    public static let revision3: UInt32 = 0x0300_0000

    /// A v3 value with its root ID passed through `map`; `nil` when the value is not v3 (nothing
    /// to map) or the root ID has no mapping.
    public static func mappingRootID(_ value: [UInt8], with map: (UInt32) -> UInt32?) -> [UInt8]? {
        guard value.count == 24, magic(value) & revisionMask == revision3 else { return nil }
        let rootID = UInt32(value[20]) | UInt32(value[21]) << 8 | UInt32(value[22]) << 16 | UInt32(value[23]) << 24
        guard let mapped = map(rootID) else { return nil }
        var out = value
        out[20] = UInt8(mapped & 0xFF); out[21] = UInt8(mapped >> 8 & 0xFF)
        out[22] = UInt8(mapped >> 16 & 0xFF); out[23] = UInt8(mapped >> 24)
        return out
    }

    /// The root ID a v3 value carries (bytes 20–23, little-endian); `nil` for other revisions.
    public static func rootID(_ value: [UInt8]) -> UInt32? {
        guard value.count == 24, magic(value) & revisionMask == revision3 else { return nil }
        return UInt32(value[20]) | UInt32(value[21]) << 8 | UInt32(value[22]) << 16 | UInt32(value[23]) << 24
    }

    /// The revision-3 form of a v2 value, belonging to `rootID`; `nil` when the value is not v2.
    public static func asRevision3(_ value: [UInt8], rootID: UInt32) -> [UInt8]? {
        guard value.count == 20, magic(value) & revisionMask == revision2 else { return nil }
        var out = value
        let magic = revision3 | (magic(value) & ~revisionMask)
        out[0] = UInt8(magic & 0xFF); out[1] = UInt8(magic >> 8 & 0xFF)
        out[2] = UInt8(magic >> 16 & 0xFF); out[3] = UInt8(magic >> 24)
        out += [UInt8(rootID & 0xFF), UInt8(rootID >> 8 & 0xFF), UInt8(rootID >> 16 & 0xFF), UInt8(rootID >> 24)]
        return out
    }

    /// The revision-2 form of a v3 value (the root ID dropped); other values unchanged.
    public static func asRevision2(_ value: [UInt8]) -> [UInt8] {
        guard value.count == 24, magic(value) & revisionMask == revision3 else { return value }
        var out = Array(value[0..<20])
        let flags = magic(value) & ~revisionMask
        let magic = revision2 | flags
        out[0] = UInt8(magic & 0xFF); out[1] = UInt8(magic >> 8 & 0xFF)
        out[2] = UInt8(magic >> 16 & 0xFF); out[3] = UInt8(magic >> 24)
        return out
    }

    private static func magic(_ value: [UInt8]) -> UInt32 {
        UInt32(value[0]) | UInt32(value[1]) << 8 | UInt32(value[2]) << 16 | UInt32(value[3]) << 24
    }
}
