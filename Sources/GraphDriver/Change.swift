/// One entry of a layer's change list, as `changes` reports it.
public struct Change: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable {
        case modify = "C", add = "A", delete = "D"
    }

    /// The path inside the layer, absolute (`/etc/passwd`).
    public var path: String
    public var kind: Kind

    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// `A /path`, `C /path` or `D /path`.
    public var description: String { "\(kind.rawValue) \(path)" }

    public static func < (lhs: Change, rhs: Change) -> Bool {
        lhs.path == rhs.path ? lhs.kind.rawValue < rhs.kind.rawValue : lhs.path < rhs.path
    }
}
