import GraphDriver
import StrataSystem
import SystemPackage

/// The 26-character names in `<home>/l/` that keep mount data short:
/// `l/<short> -> ../<id>/diff`, and each layer's `link` file holding its short name.
enum ShortLinks {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// Encodes 16 bytes as 26 base32 characters (no padding).
    static func base32(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(26)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A fresh random short name.
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return base32((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The short name a layer gets first: derived from its ID, so that a lost `link` file and a
    /// lost `l/` entry can both be rebuilt from the ID alone. (A collision falls back to `random()`.)
    static func derived(from id: LayerID) -> String {
        var bytes: [UInt8] = []
        for seed: UInt64 in [0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4] {
            var hash = seed
            for b in id.rawValue.utf8 {
                hash ^= UInt64(b)
                hash = hash &* 0x100_0000_01b3
            }
            // Mix so that similar IDs give unrelated names.
            hash ^= hash >> 33
            hash = hash &* 0xff51_afd7_ed55_8ccd
            hash ^= hash >> 33
            for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: hash >> (8 * UInt64(i)))) }
        }
        return base32(bytes)
    }

    /// Whether `text` looks like a short name.
    static func isShortName(_ text: Substring) -> Bool {
        text.utf8.count == 26 && text.utf8.allSatisfy { alphabet.contains($0) }
    }

    /// The symlink target for a layer's short link.
    static func target(for id: LayerID) -> String { "../\(id.rawValue)/" + StoreLayout.diff }

    /// The layer a short link's target names, when it has the `../<id>/diff` shape.
    static func layer(fromTarget target: String) -> LayerID? {
        let suffix = "/" + StoreLayout.diff
        guard target.hasPrefix("../"), target.hasSuffix(suffix) else { return nil }
        let middle = target.dropFirst(3).dropLast(suffix.count)
        return try? LayerID(middle)
    }
}

extension FileDescriptor {
    /// The short name a layer's `link` file (at `path`, relative to this directory) holds,
    /// without a trailing newline (containers/storage writes none, hand edits often add one);
    /// `nil` when the file is missing or does not hold a short name.
    func readShortName(at path: FilePath) -> String? {
        guard let text = try? readText(at: path) else { return nil }
        let name = text.hasSuffix("\n") ? text.dropLast() : Substring(text)
        return ShortLinks.isShortName(name) ? String(name) : nil
    }
}
