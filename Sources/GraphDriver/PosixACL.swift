/// A POSIX ACL in the binary form the kernel keeps in `system.posix_acl_access` and
/// `system.posix_acl_default`: a version word, then `(tag, permissions, id)` records.
public struct PosixACL: Sendable, Hashable {
    /// What an ACL entry applies to.
    public enum Tag: UInt16, Sendable, Hashable, Comparable {
        case userObject = 0x01, user = 0x02, groupObject = 0x04, group = 0x08, mask = 0x10, other = 0x20

        public static func < (lhs: Tag, rhs: Tag) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// One entry: `permissions` is `rwx` as 4/2/1; `id` is a uid or gid for `.user`/`.group`.
    public struct Entry: Sendable, Hashable {
        public var tag: Tag
        public var permissions: UInt16
        public var id: UInt32

        public init(tag: Tag, permissions: UInt16, id: UInt32) {
            self.tag = tag
            self.permissions = permissions
            self.id = id
        }
    }

    /// The id of entries that name no user or group.
    public static let undefinedID: UInt32 = 0xFFFF_FFFF
    /// The only version the kernel writes.
    public static let version: UInt32 = 2

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    /// Decodes the kernel's form; `nil` when it is malformed.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, Self.le32(bytes, 0) == Self.version else { return nil }
        var entries: [Entry] = []
        var offset = 4
        while offset < bytes.count {
            guard let tag = Tag(rawValue: UInt16(Self.le32(bytes, offset) & 0xFFFF)) else { return nil }
            let perm = UInt16(truncatingIfNeeded: Self.le32(bytes, offset) >> 16)
            entries.append(Entry(tag: tag, permissions: perm, id: Self.le32(bytes, offset + 4)))
            offset += 8
        }
        self.entries = entries
    }

    /// The kernel's form, entries sorted by tag and id as the kernel requires.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + 8 * entries.count)
        Self.append32(&out, Self.version)
        for entry in entries.sorted(by: { ($0.tag, $0.id) < ($1.tag, $1.id) }) {
            Self.append32(&out, UInt32(entry.tag.rawValue) | UInt32(entry.permissions) << 16)
            Self.append32(&out, entry.id)
        }
        return out
    }

    /// The same ACL with the ids of named user and group entries passed through `mapUser` and
    /// `mapGroup`; `nil` when one of them cannot be mapped.
    public func mappingIDs(user mapUser: (UInt32) -> UInt32?, group mapGroup: (UInt32) -> UInt32?) -> PosixACL? {
        var result = self
        for index in result.entries.indices {
            switch result.entries[index].tag {
            case .user:
                guard let id = mapUser(result.entries[index].id) else { return nil }
                result.entries[index].id = id
            case .group:
                guard let id = mapGroup(result.entries[index].id) else { return nil }
                result.entries[index].id = id
            default: break
            }
        }
        return result
    }

    private static func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    private static func append32(_ out: inout [UInt8], _ v: UInt32) {
        out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8 & 0xFF))
        out.append(UInt8(v >> 16 & 0xFF)); out.append(UInt8(v >> 24))
    }
}
