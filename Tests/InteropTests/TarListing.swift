import Foundation

/// One entry of a tar stream, as the interop tests compare streams: its header fields after PAX
/// and GNU long-name records are folded in.
struct TarListingEntry: Equatable, CustomStringConvertible {
    var name: String
    /// The typeflag character: `0` file, `1` hardlink, `2` symlink, `3` char, `4` block,
    /// `5` directory, `6` FIFO.
    var type: Character
    var mode: UInt32
    var uid: Int
    var gid: Int
    var userName: String
    var groupName: String
    var size: Int
    /// Seconds, then the PAX fraction as written (nil without a PAX `mtime`).
    var mtimeSeconds: Int
    var mtimeFraction: String?
    var linkName: String
    var device: String?
    /// `SCHILY.xattr.NAME` records, by NAME.
    var xattrs: [String: [UInt8]]
    /// PAX records other than xattrs, path, linkpath, size, uid, gid, uname, gname and mtime.
    var otherRecords: [String: String]
    var content: [UInt8]

    var description: String {
        var s = "\(type) \(name) mode=\(String(mode, radix: 8)) \(uid):\(gid) (\(userName):\(groupName)) size=\(size) mtime=\(mtimeSeconds)"
        if let mtimeFraction { s += "(pax \(mtimeFraction))" }
        if !linkName.isEmpty { s += " link=\(linkName)" }
        if let device { s += " dev=\(device)" }
        if !xattrs.isEmpty { s += " xattrs=\(xattrs.keys.sorted())" }
        if !otherRecords.isEmpty { s += " pax=\(otherRecords)" }
        return s
    }
}

/// Reads an uncompressed tar file into its entries, in stream order.
func tarListing(_ path: String) throws -> [TarListingEntry] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var entries: [TarListingEntry] = []
    var offset = 0
    var pax: [String: String] = [:]
    var global: [String: String] = [:]
    var longName: String?
    var longLink: String?

    func field(_ header: ArraySlice<UInt8>, _ start: Int, _ length: Int) -> [UInt8] {
        let base = header.startIndex + start
        let raw = header[base..<(base + length)]
        return Array(raw.prefix { $0 != 0 })
    }
    func string(_ header: ArraySlice<UInt8>, _ start: Int, _ length: Int) -> String {
        String(decoding: field(header, start, length), as: UTF8.self)
    }
    func number(_ header: ArraySlice<UInt8>, _ start: Int, _ length: Int) throws -> Int {
        let base = header.startIndex + start
        if header[base] & 0x80 != 0 {  // base-256
            var value = Int(header[base] & 0x7f)
            for b in header[(base + 1)..<(base + length)] { value = value << 8 | Int(b) }
            return value
        }
        let text = string(header, start, length).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        if text.isEmpty { return 0 }
        guard let value = Int(text, radix: 8) else { throw CommandFailed(description: "\(path): bad octal field \(text) at \(offset)") }
        return value
    }
    func records(_ data: ArraySlice<UInt8>) throws -> [String: String] {
        var result: [String: String] = [:]
        var rest = data[...]
        while !rest.isEmpty {
            guard let space = rest.firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: rest[rest.startIndex..<space], as: UTF8.self)), length > 0,
                  rest.count >= length
            else { throw CommandFailed(description: "\(path): bad PAX record at \(offset)") }
            let record = rest[(space + 1)..<(rest.startIndex + length - 1)]  // without the newline
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                // Values are kept byte for byte (as ISO Latin-1 scalars) so that binary xattrs survive.
                let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
                result[key] = String(record[(equals + 1)...].map { Character(Unicode.Scalar($0)) })
            }
            rest = rest[(rest.startIndex + length)...]
        }
        return result
    }

    while offset + 512 <= bytes.count {
        let header = bytes[offset..<(offset + 512)]
        if header.allSatisfy({ $0 == 0 }) { break }
        let size = try number(header, 124, 12)
        let type = Character(Unicode.Scalar(header[header.startIndex + 156]))
        let dataStart = offset + 512
        let data = bytes[dataStart..<min(bytes.count, dataStart + size)]
        offset = dataStart + (size + 511) / 512 * 512
        switch type {
        case "x": pax.merge(try records(data)) { $1 }; continue
        case "g": global.merge(try records(data)) { $1 }; continue
        case "L": longName = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self); continue
        case "K": longLink = String(decoding: data.prefix { $0 != 0 }, as: UTF8.self); continue
        default: break
        }
        let records = global.merging(pax) { $1 }
        var name = string(header, 0, 100)
        let prefix = string(header, 345, 155)
        if !prefix.isEmpty && string(header, 257, 6).hasPrefix("ustar") { name = prefix + "/" + name }
        if let longName { name = longName }
        if let p = records["path"] { name = latin1Bytes(p).utf8String }
        var linkName = longLink ?? string(header, 157, 100)
        if let l = records["linkpath"] { linkName = latin1Bytes(l).utf8String }
        var xattrs: [String: [UInt8]] = [:]
        var other: [String: String] = [:]
        var fraction: String?
        var mtime = try number(header, 136, 12)
        for (key, value) in records {
            if key.hasPrefix("SCHILY.xattr.") {
                xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = latin1Bytes(value)
            } else if key == "mtime" {
                let parts = value.split(separator: ".", maxSplits: 1)
                mtime = Int(parts[0]) ?? mtime
                fraction = parts.count > 1 ? String(parts[1]) : ""
            } else if !["path", "linkpath", "size", "uid", "gid", "uname", "gname"].contains(key) {
                other[key] = value
            }
        }
        let deviceTypes: Set<Character> = ["3", "4"]
        let headerUID = try number(header, 108, 8), headerGID = try number(header, 116, 8)
        entries.append(TarListingEntry(
            name: name, type: type == "\0" ? "0" : type, mode: UInt32(try number(header, 100, 8)),
            uid: records["uid"].flatMap { Int($0) } ?? headerUID,
            gid: records["gid"].flatMap { Int($0) } ?? headerGID,
            userName: records["uname"] ?? string(header, 265, 32),
            groupName: records["gname"] ?? string(header, 297, 32),
            size: records["size"].flatMap { Int($0) } ?? size,
            mtimeSeconds: mtime, mtimeFraction: fraction, linkName: linkName,
            device: deviceTypes.contains(type) ? "\(try number(header, 329, 8)),\(try number(header, 337, 8))" : nil,
            xattrs: xattrs, otherRecords: other, content: Array(data)))
        pax = [:]
        longName = nil
        longLink = nil
    }
    return entries
}

private func latin1Bytes(_ s: String) -> [UInt8] { s.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) } }

private extension Array where Element == UInt8 {
    var utf8String: String { String(decoding: self, as: UTF8.self) }
}

/// The differences between two streams' entries (names in order, then fields), one line each.
func listingDifferences(expected: [TarListingEntry], actual: [TarListingEntry]) -> [String] {
    var lines: [String] = []
    let expectedNames = expected.map(\.name), actualNames = actual.map(\.name)
    if expectedNames != actualNames {
        let missing = Set(expectedNames).subtracting(actualNames).sorted()
        let extra = Set(actualNames).subtracting(expectedNames).sorted()
        if !missing.isEmpty { lines.append("missing entries: \(missing)") }
        if !extra.isEmpty { lines.append("unexpected entries: \(extra)") }
        if missing.isEmpty && extra.isEmpty {
            lines.append("entry order differs:\n  expected \(expectedNames)\n  got      \(actualNames)")
        }
    }
    let byName = Dictionary(actual.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    for e in expected {
        guard let a = byName[e.name], a != e else { continue }
        var fields: [String] = []
        if e.type != a.type { fields.append("type \(e.type) vs \(a.type)") }
        if e.mode != a.mode { fields.append("mode \(String(e.mode, radix: 8)) vs \(String(a.mode, radix: 8))") }
        if e.uid != a.uid || e.gid != a.gid { fields.append("owner \(e.uid):\(e.gid) vs \(a.uid):\(a.gid)") }
        if e.userName != a.userName || e.groupName != a.groupName {
            fields.append("owner names \(e.userName):\(e.groupName) vs \(a.userName):\(a.groupName)")
        }
        if e.size != a.size { fields.append("size \(e.size) vs \(a.size)") }
        if e.mtimeSeconds != a.mtimeSeconds || e.mtimeFraction != a.mtimeFraction {
            fields.append("mtime \(e.mtimeSeconds).\(e.mtimeFraction ?? "-") vs \(a.mtimeSeconds).\(a.mtimeFraction ?? "-")")
        }
        if e.linkName != a.linkName { fields.append("link \(e.linkName) vs \(a.linkName)") }
        if e.device != a.device { fields.append("device \(e.device ?? "-") vs \(a.device ?? "-")") }
        if e.xattrs != a.xattrs {
            for key in Set(e.xattrs.keys).union(a.xattrs.keys).sorted() where e.xattrs[key] != a.xattrs[key] {
                fields.append("xattr \(key) \(e.xattrs[key].map(hex) ?? "absent") vs \(a.xattrs[key].map(hex) ?? "absent")")
            }
        }
        if e.otherRecords != a.otherRecords { fields.append("PAX records \(e.otherRecords) vs \(a.otherRecords)") }
        if e.content != a.content { fields.append("content differs") }
        lines.append("\(e.name): " + fields.joined(separator: "; "))
    }
    return lines
}
