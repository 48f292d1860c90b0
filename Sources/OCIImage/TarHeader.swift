import GraphDriver

/// Decodes tar headers one 512-byte block at a time, carrying pax (`path`, `linkpath`, `size`)
/// and GNU long-name records over to the entry they describe: the part of tar reading that
/// ``TarIndex`` (a seekable file) and ``CompressedTar`` (a compressed stream) share.
///
/// It understands ustar, pax and GNU headers, which is what `docker save`, `podman save`,
/// skopeo and GNU tar write, and checks each header's checksum.
struct TarHeaderDecoder {
    /// What a header introduces.
    enum Kind: Equatable {
        case file, hardLink, symbolicLink, other
        /// A pax (`x`, `g`) or GNU long-name (`L`, `K`) record for the next entry: its data
        /// goes to ``absorb(_:data:)``.
        case record(UInt8)
    }

    /// One decoded header.
    struct Header {
        var name: String
        var link: String
        var kind: Kind
        /// The size of the data that follows the header (before padding to 512 bytes).
        var size: Int64
    }

    static let block = 512
    let path: String
    private var longName: String?
    private var longLink: String?
    private var pax: [String: String] = [:]

    init(path: String) { self.path = path }

    /// Decodes the header block at `offset`; `nil` for a zero block (the end of the archive).
    mutating func decode(_ header: [UInt8], at offset: Int64) throws(StorageError) -> Header? {
        if header.allSatisfy({ $0 == 0 }) { return nil }
        guard Self.checksumMatches(header) else {
            throw StorageError(.malformedArchive, "read archive", path: path,
                               reason: "not a tar archive, or damaged: bad header checksum at byte \(offset)")
        }
        var size = try parseNumber(header[124..<136], at: offset)
        let type = header[156]
        if [UInt8(ascii: "x"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K")].contains(type) {
            return Header(name: "", link: "", kind: .record(type), size: size)
        }
        if let paxSize = pax["size"], let value = Int64(paxSize) { size = value }
        var name = longName ?? Self.cString(header[0..<100])
        if longName == nil, header[257..<262].elementsEqual("ustar".utf8) {
            let prefix = Self.cString(header[345..<500])
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        if let paxPath = pax["path"] { name = paxPath }
        let link = pax["linkpath"] ?? longLink ?? Self.cString(header[157..<257])
        longName = nil
        longLink = nil
        pax = [:]
        let kind: Kind = switch type {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
        case UInt8(ascii: "1"): .hardLink
        case UInt8(ascii: "2"): .symbolicLink
        default: .other
        }
        return Header(name: name, link: link, kind: kind, size: size)
    }

    /// Takes a record's data: pax `x` records and GNU long names apply to the next entry.
    mutating func absorb(_ type: UInt8, data: [UInt8]) {
        switch type {
        case UInt8(ascii: "x"): pax = Self.parsePax(data)
        case UInt8(ascii: "L"): longName = Self.cString(data[...])
        case UInt8(ascii: "K"): longLink = Self.cString(data[...])
        default: break
        }
    }

    /// The bytes a member takes after its header: its size rounded up to whole blocks.
    static func paddedSize(_ size: Int64) -> Int64 {
        (size + Int64(block) - 1) / Int64(block) * Int64(block)
    }

    /// Where a symbolic link at `name` points, as an archive path: relative to its directory.
    static func resolve(link: String, from name: String) -> String {
        let directory = name.split(separator: "/").dropLast().joined(separator: "/")
        return normalize(link.hasPrefix("/") || directory.isEmpty ? link : directory + "/" + link)
    }

    /// `./a//b/` → `a/b`.
    static func normalize(_ name: String) -> String {
        var parts: [Substring] = []
        for part in name.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }

    // MARK: - Fields

    /// Octal (NUL- or space-terminated) or GNU base-256 for sizes of 8 GiB and more.
    private func parseNumber(_ field: ArraySlice<UInt8>, at offset: Int64) throws(StorageError) -> Int64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value < Int64.max >> 8 else { break }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if value == 0 { continue } else { break }
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int64.max >> 3 else {
                throw StorageError(.malformedArchive, "read archive", path: path, reason: "bad size field in the header at byte \(offset)")
            }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func checksumMatches(_ header: [UInt8]) -> Bool {
        var unsigned = 0
        for (i, byte) in header.enumerated() { unsigned += (148..<156).contains(i) ? 32 : Int(byte) }
        var stored = 0
        for byte in header[148..<156] where (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) {
            stored = stored << 3 | Int(byte - UInt8(ascii: "0"))
        }
        return stored == unsigned
    }

    /// pax records: `LEN key=value\n`.
    private static func parsePax(_ bytes: [UInt8]) -> [String: String] {
        var records: [String: String] = [:]
        var rest = bytes[...]
        while let space = rest.firstIndex(of: UInt8(ascii: " ")),
              let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)),
              length > 0, rest.startIndex + length <= rest.endIndex {
            let record = rest[(space + 1)..<(rest.startIndex + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records[String(decoding: record[record.startIndex..<equals], as: UTF8.self)] =
                    String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            rest = rest[(rest.startIndex + length)...]
        }
        return records
    }

    private static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }
}
