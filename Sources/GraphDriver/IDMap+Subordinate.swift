import StrataSystem
import SystemPackage

/// Where mappings come from on a host, and what can be said of a set of ranges: the ranges a user
/// may use (`/etc/subuid`, `/etc/subgid`), the kernel's overflow IDs, contiguity, the inverse,
/// and the root of a mapping.
extension IDMap {
    /// The same range seen from the other side: host IDs become container IDs.
    public var inverted: IDMap { IDMap(containerID: hostID, hostID: containerID, size: size) }

    /// Parses a list of ranges separated by commas (`0:100000:65536,65536:300000:1`); an empty
    /// text is the empty (identity) mapping.
    public static func parseList(_ text: some StringProtocol) throws(StorageError) -> [IDMap] {
        var ranges: [IDMap] = []
        for part in text.split(separator: ",") where !part.allSatisfy(\.isWhitespace) {
            ranges.append(try IDMap(parsing: part.trimmingWhitespace()))
        }
        try validate(ranges)
        return ranges
    }

    /// Checks that no two ranges share a container ID or a host ID (the kernel refuses such maps).
    public static func validate(_ ranges: [IDMap]) throws(StorageError) {
        func overlapping(_ key: (IDMap) -> UInt32) -> (IDMap, IDMap)? {
            let sorted = ranges.sorted { key($0) < key($1) }
            for (a, b) in zip(sorted, sorted.dropFirst())
            where UInt64(key(a)) + UInt64(a.size) > UInt64(key(b)) {
                return (a, b)
            }
            return nil
        }
        if let (a, b) = overlapping(\.containerID) {
            throw StorageError(.invalidArgument, "check ID mapping", reason: "ranges \(a) and \(b) share container IDs")
        }
        if let (a, b) = overlapping(\.hostID) {
            throw StorageError(.invalidArgument, "check ID mapping", reason: "ranges \(a) and \(b) share host IDs")
        }
    }

    /// Whether the ranges, in container order, are one block without gaps on both sides: the
    /// same as a single range.
    public static func isContiguous(_ ranges: [IDMap]) -> Bool {
        let sorted = ranges.sorted { $0.containerID < $1.containerID }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            guard UInt64(a.containerID) + UInt64(a.size) == UInt64(b.containerID),
                  UInt64(a.hostID) + UInt64(a.size) == UInt64(b.hostID)
            else { return false }
        }
        return true
    }

    /// The ranges a user may use, as an `/etc/subuid`- or `/etc/subgid`-style file lists them
    /// (`name:start:count` or `uid:start:count` lines), stacked from container ID 0 in file order.
    ///
    /// Lines for other users, comments and blank lines are skipped; a malformed line for this
    /// user is an error. No line for the user is an error too: there is nothing to map with.
    public static func subordinateRanges(
        forUser name: String, userID: UInt32? = nil, file: FilePath
    ) throws(StorageError) -> [IDMap] {
        let text = try readSmallFile(file, operation: "read subordinate IDs")
        var ranges: [IDMap] = []
        var next: UInt64 = 0
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: ":", omittingEmptySubsequences: false)
            guard let owner = fields.first, owner == name || (userID.map { owner == String($0) } ?? false) else { continue }
            guard fields.count == 3, let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0,
                  UInt64(start) + UInt64(count) <= UInt64(UInt32.max) + 1
            else {
                throw StorageError(.corrupt, "read subordinate IDs", path: file.string,
                                   reason: "line \(index + 1) ('\(trimmed)') is not name:start:count")
            }
            guard next + UInt64(count) <= UInt64(UInt32.max) + 1 else {
                throw StorageError(.invalidArgument, "read subordinate IDs", path: file.string,
                                   reason: "the ranges for \(name) add up to more IDs than there are")
            }
            ranges.append(IDMap(containerID: UInt32(next), hostID: start, size: count))
            next += UInt64(count)
        }
        guard !ranges.isEmpty else {
            throw StorageError(.notFound, "read subordinate IDs", path: file.string, reason: "no ranges for user \(name)")
        }
        try validate(ranges)
        return ranges
    }

    /// The ID the kernel shows for a user that has no mapping in a namespace
    /// (`/proc/sys/kernel/overflowuid`); 65534 when the file cannot be read.
    public static func overflowUserID(file: FilePath = "/proc/sys/kernel/overflowuid") -> UInt32 {
        overflowID(file)
    }

    /// The ID the kernel shows for a group that has no mapping in a namespace
    /// (`/proc/sys/kernel/overflowgid`); 65534 when the file cannot be read.
    public static func overflowGroupID(file: FilePath = "/proc/sys/kernel/overflowgid") -> UInt32 {
        overflowID(file)
    }

    private static func overflowID(_ file: FilePath) -> UInt32 {
        guard let text = try? readSmallFile(file, operation: "read overflow ID"),
              let id = UInt32(text.trimmingWhitespace())
        else { return 65534 }
        return id
    }

    static func readSmallFile(_ file: FilePath, operation: String) throws(StorageError) -> String {
        try attempt(operation, file) { () throws(Errno) in
            let fd = try FileDescriptor.currentWorkingDirectory.open(at: file, .readOnly)
            defer { fd.closeQuietly() }
            return String(decoding: try fd.readToEnd(), as: UTF8.self)
        }
    }
}

extension IDMappings {
    /// A user's mappings from the subordinate ID files: their ranges stacked from container ID 0.
    public static func subordinate(
        forUser name: String, userID: UInt32? = nil, groupID: UInt32? = nil,
        uidFile: FilePath = "/etc/subuid", gidFile: FilePath = "/etc/subgid"
    ) throws(StorageError) -> IDMappings {
        IDMappings(
            uidMap: try IDMap.subordinateRanges(forUser: name, userID: userID, file: uidFile),
            gidMap: try IDMap.subordinateRanges(forUser: name, userID: groupID, file: gidFile))
    }

    /// The mapping seen from the other side: host IDs become container IDs.
    public var inverted: IDMappings {
        IDMappings(uidMap: uidMap.map(\.inverted), gidMap: gidMap.map(\.inverted))
    }

    /// Whether both the user and the group mapping are single blocks.
    public var isContiguous: Bool { IDMap.isContiguous(uidMap) && IDMap.isContiguous(gidMap) }

    /// The host user that container root maps to (0 for the identity), `nil` when root is unmapped.
    public var rootUID: UInt32? { Self.hostID(0, uidMap) }

    /// The host group that container root maps to (0 for the identity), `nil` when root is unmapped.
    public var rootGID: UInt32? { Self.hostID(0, gidMap) }

    /// Checks both mappings for overlapping ranges.
    public func validate() throws(StorageError) {
        try IDMap.validate(uidMap)
        try IDMap.validate(gidMap)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> Substring {
        let s = self[...]
        guard let first = s.firstIndex(where: { !$0.isWhitespace }),
              let last = s.lastIndex(where: { !$0.isWhitespace })
        else { return Substring() }
        return Substring(s[first...last])
    }
}
