import GraphDriver
import StrataSystem
import SystemPackage

/// Where each member of an uncompressed tar file lies, read from its headers alone: one pass
/// that seeks over the members' contents, so that small JSON members can be read and large
/// layers streamed afterwards in whatever order the image needs them.
///
/// It understands ustar, pax (`path`, `linkpath` and `size` records) and GNU long names, which
/// is what `docker save`, `podman save`, skopeo and GNU tar write. Each header's checksum is
/// checked, and a member that runs past the end of the file is reported as a truncated archive.
struct TarIndex {
    /// One member: a regular file's contents at `offset`, or a link to another member.
    struct Member {
        var offset: Int64
        var size: Int64
        /// For a symbolic or hard link, the member it points to (a normalized archive path).
        var linkTarget: String?
    }

    /// The members by normalized path (no leading `./`, no trailing `/`); the last one wins.
    private(set) var members: [String: Member] = [:]
    /// The archive's file size.
    let fileSize: Int64
    /// Whether the file ends after a member without the end-of-archive (zero) blocks every tar
    /// writer puts there: it was most likely cut short at a member's boundary.
    private(set) var endMarkerMissing = false
    let path: String

    private static let block = 512

    /// Reads the headers of the tar in `file`.
    init(file: FileDescriptor, path: String) throws(StorageError) {
        self.path = path
        do throws(Errno) { fileSize = try file.status().size } catch {
            throw StorageError("read archive", path: path, errno: error)
        }
        var offset: Int64 = 0
        var header = [UInt8](repeating: 0, count: Self.block)
        var longName: String?
        var longLink: String?
        var paxRecords: [String: String] = [:]
        while true {
            guard offset + Int64(Self.block) <= fileSize else {
                // An archive may end without its two zero blocks, but not inside a header.
                if offset == fileSize, offset > 0 {
                    endMarkerMissing = true
                    return
                }
                throw truncated("it ends inside a member's header at byte \(offset)")
            }
            try Self.read(file, into: &header, at: offset, path: path)
            if header.allSatisfy({ $0 == 0 }) { return }
            guard Self.checksumMatches(header) else {
                throw StorageError(.malformedArchive, "read archive", path: path,
                                   reason: "not a tar archive, or damaged: bad header checksum at byte \(offset)")
            }
            var size = try parseNumber(header[124..<136], at: offset)
            let type = header[156]
            let dataOffset = offset + Int64(Self.block)
            if let paxSize = paxRecords["size"], let value = Int64(paxSize) { size = value }
            guard size >= 0, dataOffset + size <= fileSize else {
                throw truncated("a member at byte \(offset) needs \(size) bytes, the file ends \(fileSize - dataOffset) bytes after its header")
            }
            offset = dataOffset + (size + Int64(Self.block) - 1) / Int64(Self.block) * Int64(Self.block)
            switch type {
            case UInt8(ascii: "x"):
                paxRecords = Self.parsePax(try Self.readBytes(file, at: dataOffset, count: Int(size), path: path))
                continue
            case UInt8(ascii: "g"):
                continue
            case UInt8(ascii: "L"):
                longName = Self.cString(try Self.readBytes(file, at: dataOffset, count: Int(size), path: path)[...])
                continue
            case UInt8(ascii: "K"):
                longLink = Self.cString(try Self.readBytes(file, at: dataOffset, count: Int(size), path: path)[...])
                continue
            default:
                break
            }
            var name = longName ?? Self.cString(header[0..<100])
            if longName == nil, header[257..<262].elementsEqual("ustar".utf8) {
                let prefix = Self.cString(header[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            if let paxPath = paxRecords["path"] { name = paxPath }
            let link = paxRecords["linkpath"] ?? longLink ?? Self.cString(header[157..<257])
            longName = nil
            longLink = nil
            paxRecords = [:]
            let key = Self.normalize(name)
            switch type {
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"):
                members[key] = Member(offset: dataOffset, size: size)
            case UInt8(ascii: "1"):
                // A hard link names an earlier member, which may be at the same path (a file
                // archived twice): take its contents now.
                if let target = member(link) { members[key] = target }
            case UInt8(ascii: "2"):
                // Relative to the link's directory, as a file system would resolve it.
                let directory = key.split(separator: "/").dropLast().joined(separator: "/")
                let target = link.hasPrefix("/") ? link : (directory.isEmpty ? link : directory + "/" + link)
                members[key] = Member(offset: 0, size: 0, linkTarget: Self.normalize(target))
            default:
                break  // directories and other kinds hold nothing an image needs
            }
        }
    }

    /// The member at `name`, following links (a docker-archive's `<id>/layer.tar` is often a
    /// symbolic link to a layer stored once).
    func member(_ name: String) -> Member? {
        var key = Self.normalize(name)
        for _ in 0..<16 {
            guard let member = members[key] else { return nil }
            guard let target = member.linkTarget else { return member }
            key = target
        }
        return nil
    }

    /// Reads a whole member (the small JSON ones).
    func contents(of name: String, file: FileDescriptor, limit: Int64 = 64 << 20) throws(StorageError) -> [UInt8]? {
        guard let member = member(name) else { return nil }
        guard member.size <= limit else {
            throw StorageError(.invalidArgument, "read archive", path: path,
                               reason: "\(name) is \(member.size) bytes, more than such a member can be")
        }
        return try Self.readBytes(file, at: member.offset, count: Int(member.size), path: path)
    }

    // MARK: - Header fields

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

    /// `./a//b/` → `a/b`.
    static func normalize(_ name: String) -> String {
        var parts: [Substring] = []
        for part in name.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }

    private func truncated(_ detail: String) -> StorageError {
        StorageError(.malformedArchive, "read archive", path: path, reason: "the archive is truncated: \(detail)")
    }

    // MARK: - Reading

    static func readBytes(_ file: FileDescriptor, at offset: Int64, count: Int, path: String) throws(StorageError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        defer { buffer.deallocate() }
        let done = try readFully(file, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: offset, path: path)
        guard done == count else {
            throw StorageError(.malformedArchive, "read archive", path: path, reason: "the archive is truncated at byte \(offset + Int64(done))")
        }
        return [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// Fills `bytes` from `offset` (pread), failing on a short file.
    static func read(_ file: FileDescriptor, into bytes: inout [UInt8], at offset: Int64, path: String) throws(StorageError) {
        bytes = try readBytes(file, at: offset, count: bytes.count, path: path)
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    static func readFully(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws(StorageError) -> Int {
        var done = 0
        while done < buffer.count {
            let n: Int
            do {
                n = try file.read(fromAbsoluteOffset: offset + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            } catch {
                throw StorageError("read archive", path: path, errno: (error as? Errno) ?? .ioError)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }
}
