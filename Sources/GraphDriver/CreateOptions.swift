/// Disk limits for one layer's writable directory. `nil` means no limit.
public struct QuotaLimits: Sendable, Hashable {
    /// The most bytes the layer may hold.
    public var size: UInt64?
    /// The most files the layer may hold.
    public var inodes: UInt64?

    public init(size: UInt64? = nil, inodes: UInt64? = nil) {
        self.size = size
        self.inodes = inodes
    }

    /// No limits at all.
    public static let none = QuotaLimits()

    /// Whether neither limit is set.
    public var isEmpty: Bool { size == nil && inodes == nil }

    /// Parses a byte size: a whole number with an optional `k`, `m`, `g`, `t` suffix (powers of
    /// 1024, optionally followed by `b`/`ib`), as `--storage-opt size=10G` is written.
    public static func parseSize(_ text: String) throws(StorageError) -> UInt64 {
        var s = text.lowercased()
        for suffix in ["ib", "b"] where s.hasSuffix(suffix) && s.count > suffix.count {
            s.removeLast(suffix.count)
            break
        }
        var multiplier: UInt64 = 1
        if let last = s.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4, "p": 5][String(last)] {
            multiplier = 1 << (10 * UInt64(power))
            s.removeLast()
        }
        guard let value = UInt64(s) else {
            throw StorageError(.invalidArgument, "parse size", reason: "'\(text)' is not a size such as 512M or 10G")
        }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw StorageError(.invalidArgument, "parse size", reason: "'\(text)' is too large") }
        return product
    }
}

/// How a layer is created.
public struct CreateOptions: Sendable, Hashable {
    /// Limits for the layer's writable directory (read-write layers only).
    public var quota: QuotaLimits
    /// The mapping the layer's files are owned under (its root belongs to the mapped root).
    public var idMappings: IDMappings
    /// The SELinux label the layer will be mounted with.
    public var mountLabel: SELinuxContext?
    /// Create the layer marked incomplete (see `IncompleteLayerMarking`): its contents are still
    /// to come, and a crash before `markComplete` leaves it recognisably unfinished.
    public var incomplete = false

    public init(quota: QuotaLimits = .none, idMappings: IDMappings = .identity, mountLabel: SELinuxContext? = nil) {
        self.quota = quota
        self.idMappings = idMappings
        self.mountLabel = mountLabel
    }

    /// Parses per-layer storage options (`size=10G`, `inodes=1000`); any other key is an error.
    public init(storageOptions: [String], idMappings: IDMappings = .identity,
                mountLabel: SELinuxContext? = nil) throws(StorageError) {
        var quota = QuotaLimits()
        for option in storageOptions {
            let (key, value) = try DriverOptions.split(option)
            switch key {
            case "size": quota.size = try QuotaLimits.parseSize(value)
            case "inodes":
                guard let n = UInt64(value) else {
                    throw StorageError(.invalidArgument, "parse storage option", reason: "inodes='\(value)' is not a whole number")
                }
                quota.inodes = n
            default:
                throw StorageError(.invalidArgument, "parse storage option", reason:
                    "'\(key)' is not a per-layer option (size, inodes)")
            }
        }
        self.init(quota: quota, idMappings: idMappings, mountLabel: mountLabel)
    }
}

/// How much a layer's writable directory holds.
public struct DiskUsage: Sendable, Hashable {
    /// Bytes used.
    public var bytes: Int64
    /// Files (inodes) used.
    public var inodes: Int64

    public init(bytes: Int64, inodes: Int64) {
        self.bytes = bytes
        self.inodes = inodes
    }
}

/// One line of `status` or `metadata`: an ordered key and its value.
public struct DriverStatusItem: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }

    /// `Key: value`.
    public var description: String { "\(key): \(value)" }
}

/// A driver that can mark a layer as still being filled (created with `CreateOptions.incomplete`
/// until `markComplete`), so that a layer left empty by a crash between its create and the end
/// of its apply is never mistaken for a finished one.
public protocol IncompleteLayerMarking {
    /// Declares the layer's contents complete.
    func markComplete(_ id: LayerID) throws(StorageError)
    /// Whether the layer was created incomplete and never marked complete.
    func isIncomplete(_ id: LayerID) -> Bool
    /// Whether the process that created the incomplete layer is gone (so nobody will finish it).
    func isAbandoned(_ id: LayerID) -> Bool
}
