import Foundation

/// Builds tar streams byte by byte, so tests can make archives no well-behaved tool would:
/// names with `..`, links out of the tree, bad checksums, short data.
struct TarBuilder {
    enum TypeFlag: UInt8 {
        case file = 0x30, hardlink = 0x31, symlink = 0x32, char = 0x33, block = 0x34, directory = 0x35,
             fifo = 0x36, pax = 0x78, gnuLongName = 0x4C
    }

    private(set) var bytes: [UInt8] = []

    /// Appends one header (and its data, padded to 512 bytes).
    mutating func add(
        _ name: String, type: TypeFlag = .file, data: [UInt8] = [], mode: Int = 0o644, uid: Int = 0, gid: Int = 0,
        linkName: String = "", mtime: Int = 1_700_000_000, devMajor: Int = 0, devMinor: Int = 0,
        size: Int? = nil, corruptChecksum: Bool = false, pax: [String: String] = [:]
    ) {
        if !pax.isEmpty {
            var records: [UInt8] = []
            for (key, value) in pax.sorted(by: { $0.key < $1.key }) {
                let body = " \(key)=\(value)\n"
                var length = body.utf8.count + 1
                while String(length).count + body.utf8.count != length { length = String(length).count + body.utf8.count }
                records += Array("\(length)\(body)".utf8)
            }
            add("PaxHeaders/x", type: .pax, data: records)
        }
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int, _ width: Int) {
            let b = Array(text.utf8.prefix(width))
            header.replaceSubrange(offset..<(offset + b.count), with: b)
        }
        func octal(_ value: Int, _ offset: Int, _ width: Int) {
            put(String(repeating: "0", count: max(0, width - 1 - String(value, radix: 8).count)) + String(value, radix: 8), offset, width - 1)
        }
        put(name, 0, 100)
        octal(mode, 100, 8)
        octal(uid, 108, 8)
        octal(gid, 116, 8)
        octal(size ?? data.count, 124, 12)
        octal(mtime, 136, 12)
        header[156] = type.rawValue
        put(linkName, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        octal(devMajor, 329, 8)
        octal(devMinor, 337, 8)
        for i in 148..<156 { header[i] = 0x20 }
        var sum = header.reduce(0) { $0 + Int($1) }
        if corruptChecksum { sum += 7 }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), 148, 6)
        header[154] = 0
        header[155] = 0x20
        bytes += header
        bytes += data
        let pad = (512 - data.count % 512) % 512
        bytes += [UInt8](repeating: 0, count: pad)
    }

    /// The two zero blocks that end an archive.
    mutating func finish() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }

    /// The finished archive.
    func finished() -> [UInt8] {
        var copy = self
        copy.finish()
        return copy.bytes
    }
}
