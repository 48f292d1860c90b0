/// One contiguous range of a user-namespace mapping: `size` IDs starting at `containerID` inside
/// the container are `hostID…` outside it. Written `container:host:size`.
public struct IDMap: Sendable, Hashable, CustomStringConvertible {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32

    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }

    /// Parses `container:host:size`.
    public init(parsing text: some StringProtocol) throws(StorageError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let c = UInt32(parts[0]), let h = UInt32(parts[1]), let s = UInt32(parts[2]), s > 0
        else {
            throw StorageError(.invalidArgument, "parse ID mapping", reason:
                "'\(text)' is not container:host:size with three whole numbers and a size above 0")
        }
        guard UInt64(c) + UInt64(s) <= UInt64(UInt32.max) + 1, UInt64(h) + UInt64(s) <= UInt64(UInt32.max) + 1 else {
            throw StorageError(.invalidArgument, "parse ID mapping", reason: "'\(text)' runs past the largest ID")
        }
        self.init(containerID: c, hostID: h, size: s)
    }

    public var description: String { "\(containerID):\(hostID):\(size)" }

    /// The host ID for a container ID, when this range holds it.
    @inlinable
    public func toHost(_ id: UInt32) -> UInt32? {
        guard id >= containerID, UInt64(id) < UInt64(containerID) + UInt64(size) else { return nil }
        return hostID + (id - containerID)
    }

    /// The container ID for a host ID, when this range holds it.
    @inlinable
    public func toContainer(_ id: UInt32) -> UInt32? {
        guard id >= hostID, UInt64(id) < UInt64(hostID) + UInt64(size) else { return nil }
        return containerID + (id - hostID)
    }
}

/// A user and a group mapping together. Empty mappings are the identity.
public struct IDMappings: Sendable, Hashable {
    public var uidMap: [IDMap]
    public var gidMap: [IDMap]

    public init(uidMap: [IDMap] = [], gidMap: [IDMap] = []) {
        self.uidMap = uidMap
        self.gidMap = gidMap
    }

    /// The identity mapping.
    public static let identity = IDMappings()

    /// Whether both mappings are empty (nothing is shifted).
    public var isIdentity: Bool { uidMap.isEmpty && gidMap.isEmpty }

    /// The host owner of a container owner; `nil` when either ID is outside the mapping.
    @inlinable
    public func toHost(uid: UInt32, gid: UInt32) -> (uid: UInt32, gid: UInt32)? {
        guard let u = Self.hostID(uid, uidMap), let g = Self.hostID(gid, gidMap) else { return nil }
        return (u, g)
    }

    /// The container owner of a host owner; `nil` when either ID is outside the mapping.
    @inlinable
    public func toContainer(uid: UInt32, gid: UInt32) -> (uid: UInt32, gid: UInt32)? {
        guard let u = Self.containerID(uid, uidMap), let g = Self.containerID(gid, gidMap) else { return nil }
        return (u, g)
    }

    /// The host ID of a container ID under one mapping: itself when the mapping is empty.
    @inlinable
    public static func hostID(_ id: UInt32, _ ranges: [IDMap]) -> UInt32? {
        if ranges.isEmpty { return id }
        for range in ranges {
            if let mapped = range.toHost(id) { return mapped }
        }
        return nil
    }

    /// The container ID of a host ID under one mapping: itself when the mapping is empty.
    @inlinable
    public static func containerID(_ id: UInt32, _ ranges: [IDMap]) -> UInt32? {
        if ranges.isEmpty { return id }
        for range in ranges {
            if let mapped = range.toContainer(id) { return mapped }
        }
        return nil
    }

    /// The host IDs that container root maps to (`0:0` for the identity).
    public var rootPair: (uid: UInt32, gid: UInt32)? { toHost(uid: 0, gid: 0) }
}
