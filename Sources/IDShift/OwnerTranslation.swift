import GraphDriver

/// The arithmetic of one shift: a host ID under the old mapping to a host ID under the new one,
/// through the container ID both share. Pure; the walk asks it about every ID it meets.
struct OwnerTranslation: Sendable {
    /// Why an ID could not be translated.
    enum Failure: Error, Sendable, Hashable {
        /// The old mapping has no container ID for this host ID.
        case notInSource(id: UInt32, group: Bool)
        /// The new mapping has no host ID for this container ID.
        case notInTarget(containerID: UInt32, group: Bool)
    }

    let from: IDMappings
    let to: IDMappings
    let policy: UnmappedIDPolicy
    let overflowUID: UInt32
    let overflowGID: UInt32

    init(from: IDMappings, to: IDMappings, options: ShiftOptions) {
        self.from = from
        self.to = to
        policy = options.unmappedIDs
        overflowUID = options.overflowUID
        overflowGID = options.overflowGID
    }

    /// Whether on-disk user 0 has a container ID under the old mapping (always, for the identity).
    var sourceHoldsRoot: Bool { IDMappings.containerID(0, from.uidMap) != nil }

    /// The new host ID of a user (`group: false`) or group ID.
    @inline(__always)
    func translate(_ id: UInt32, group: Bool) -> Result<UInt32, Failure> {
        let source = group ? from.gidMap : from.uidMap
        let target = group ? to.gidMap : to.uidMap
        guard let container = IDMappings.containerID(id, source) else {
            return .failure(.notInSource(id: id, group: group))
        }
        guard let host = IDMappings.hostID(container, target) else {
            return .failure(.notInTarget(containerID: container, group: group))
        }
        return .success(host)
    }

    /// The overflow ID the policy gives an unmapped ID, or `nil` when the policy is to fail.
    func overflow(group: Bool) -> UInt32? {
        policy == .useOverflowID ? (group ? overflowGID : overflowUID) : nil
    }

    /// A sentence for a failure: which ID, which mapping.
    func explain(_ failure: Failure, what: String) -> String {
        switch failure {
        case .notInSource(let id, let group):
            let map = (group ? from.gidMap : from.uidMap).map(\.description).joined(separator: ",")
            return "\(what) \(group ? "gid" : "uid") \(id) is outside the current \(group ? "gid" : "uid") mapping \(map)"
        case .notInTarget(let id, let group):
            let map = (group ? to.gidMap : to.uidMap).map(\.description).joined(separator: ",")
            return "\(what) container \(group ? "gid" : "uid") \(id) has no host ID in the new \(group ? "gid" : "uid") mapping \(map)"
        }
    }
}

/// `user.containers.override_stat`: `uid:gid:mode[:type]`, the owner and mode a file is shown
/// with when the real ones are forced (rootless storage, `force_mask`).
struct OverrideStat: Sendable, Hashable {
    var uid: UInt32
    var gid: UInt32
    /// Everything after the second colon, kept byte for byte.
    var rest: Substring

    init?(_ value: [UInt8]) {
        let text = String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let uid = UInt32(parts[0]), let gid = UInt32(parts[1]) else { return nil }
        self.uid = uid
        self.gid = gid
        rest = parts[2]
    }

    var bytes: [UInt8] { Array("\(uid):\(gid):\(rest)".utf8) }
}
