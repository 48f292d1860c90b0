/// The name of a layer: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 255 bytes.
///
/// A layer's parent is a `LayerID?`: `nil` means a base layer, never an empty string.
public struct LayerID: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The validated name.
    public let rawValue: String

    /// Validates `text` as a layer ID.
    public init(_ text: some StringProtocol) throws(StorageError) {
        guard Self.isValid(text) else {
            throw StorageError(.invalidArgument, "parse layer ID", reason:
                "'\(text)' is not a layer ID: it must match [A-Za-z0-9][A-Za-z0-9_.-]* and be at most 255 bytes")
        }
        rawValue = String(text)
    }

    /// Whether `text` is a valid layer ID.
    public static func isValid(_ text: some StringProtocol) -> Bool {
        let bytes = text.utf8
        guard let first = bytes.first, bytes.count <= 255, Self.isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { Self.isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlphanumeric(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }

    public var description: String { rawValue }

    public static func < (lhs: LayerID, rhs: LayerID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
