import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

/// A gzip- or zstd-compressed image archive (`docker save | gzip`), read front to back through
/// the decompressor, never unpacked to disk.
///
/// A compressed stream cannot be seeked, so the archive is read in passes: the first records
/// every entry's header and keeps the small members the image's description needs (JSON,
/// `repositories`, small blobs); each layer is then streamed by a pass of its own that
/// decompresses up to the layer's entry, hands its bytes on, and stops there.
enum CompressedTar {
    /// Members kept by the first pass: at most this big each, and this much in all.
    static let smallMember: Int64 = 4 << 20
    static let keptInAll = 64 << 20

    /// The first pass: where the entries are (by ordinal), and the small members' bytes.
    static func index(path: String) throws(StorageError) -> (index: TarIndex, kept: [Int: [UInt8]]) {
        var members: [String: TarIndex.Member] = [:]
        var kept: [Int: [UInt8]] = [:]
        var keptBytes = 0
        let end = try scan(path: path, entry: { header, ordinal in
            let key = TarHeaderDecoder.normalize(header.name)
            switch header.kind {
            case .file:
                members[key] = TarIndex.Member(offset: 0, size: header.size, ordinal: ordinal)
                let wanted = key.hasSuffix(".json") || key == "repositories" || key == "oci-layout" || key.hasPrefix("blobs/")
                if wanted, header.size <= smallMember, keptBytes + Int(header.size) <= keptInAll {
                    keptBytes += Int(header.size)
                    return .keep
                }
            case .hardLink:
                if let target = resolve(header.link, in: members) { members[key] = target }
            case .symbolicLink:
                members[key] = TarIndex.Member(offset: 0, size: 0, linkTarget: TarHeaderDecoder.resolve(link: header.link, from: key), ordinal: ordinal)
            case .other, .record:
                break
            }
            return .skip
        }, kept: { ordinal, bytes in kept[ordinal] = bytes })
        let index = TarIndex(members: members, size: end.size, endMarkerMissing: !end.marker, path: path)
        return (index, kept)
    }

    /// A later pass: hands the data of the entry numbered `ordinal` to `body`, then stops.
    static func stream(path: String, ordinal wanted: Int,
                       _ body: (UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) {
        var found = false
        _ = try scan(path: path, entry: { _, ordinal in
            guard ordinal == wanted else { return .skip }
            found = true
            return .streamAndStop
        }, data: body)
        guard found else {
            throw StorageError(.malformedArchive, "read archive", path: path, reason: "the archive is truncated: entry \(wanted) is gone")
        }
    }

    private static func resolve(_ link: String, in members: [String: TarIndex.Member]) -> TarIndex.Member? {
        var key = TarHeaderDecoder.normalize(link)
        for _ in 0..<16 {
            guard let member = members[key] else { return nil }
            guard let target = member.linkTarget else { return member }
            key = target
        }
        return nil
    }

    enum Want { case skip, keep, streamAndStop }

    /// Decompresses the archive and walks its entries: `entry` says what to do with each one's
    /// data. Returns the uncompressed size read and whether the end-of-archive block was seen.
    private static func scan(path: String,
                             entry: (TarHeaderDecoder.Header, Int) throws(StorageError) -> Want,
                             kept: (Int, [UInt8]) -> Void = { _, _ in },
                             data: (UnsafeRawBufferPointer) throws(StorageError) -> Void = { _ throws(StorageError) in })
    throws(StorageError) -> (size: Int64, marker: Bool) {
        let file: FileDescriptor
        do throws(Errno) { file = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly) } catch {
            throw StorageError("read archive", path: path, errno: error)
        }
        defer { file.closeQuietly() }
        let stop = StorageError(.io, "read archive", path: path, reason: "(the wanted entry was read)")
        var decoder = TarHeaderDecoder(path: path)
        var header: [UInt8] = []
        header.reserveCapacity(TarHeaderDecoder.block)
        var inHeader = true
        var want = Want.skip
        var record: UInt8?
        var buffer: [UInt8] = []
        var remaining: Int64 = 0
        var padding: Int64 = 0
        var ordinal = -1
        var position: Int64 = 0
        var ended = false

        func finishEntry() throws(StorageError) {
            inHeader = true
            if let type = record {
                decoder.absorb(type, data: buffer)
            } else if want == .keep {
                kept(ordinal, buffer)
            } else if want == .streamAndStop {
                throw stop
            }
            buffer = []
            record = nil
        }

        do throws(StorageError) {
            try StreamDecompressor(input: file).forEachBlock { (block) throws(StorageError) in
                var rest = block[...]
                while !rest.isEmpty, !ended {
                    if inHeader {
                        let n = min(TarHeaderDecoder.block - header.count, rest.count)
                        header.append(contentsOf: rest.prefix(n))
                        rest = rest.dropFirst(n)
                        position += Int64(n)
                        guard header.count == TarHeaderDecoder.block else { continue }
                        guard let decoded = try decoder.decode(header, at: position - Int64(TarHeaderDecoder.block)) else {
                            ended = true
                            break
                        }
                        header.removeAll(keepingCapacity: true)
                        guard decoded.size >= 0 else {
                            throw StorageError(.malformedArchive, "read archive", path: path, reason: "a negative member size, \(position) bytes in")
                        }
                        inHeader = false
                        remaining = decoded.size
                        padding = TarHeaderDecoder.paddedSize(decoded.size) - decoded.size
                        if case .record(let type) = decoded.kind {
                            guard decoded.size <= smallMember else {
                                throw StorageError(.malformedArchive, "read archive", path: path, reason: "a header record of \(decoded.size) bytes")
                            }
                            record = type
                            want = .keep
                        } else {
                            ordinal += 1
                            want = try entry(decoded, ordinal)
                        }
                    } else if remaining > 0 {
                        let n = Int(min(remaining, Int64(rest.count)))
                        let chunk = UnsafeRawBufferPointer(rebasing: rest.prefix(n))
                        switch want {
                        case .keep: buffer.append(contentsOf: chunk)
                        case .streamAndStop: try data(chunk)
                        case .skip: break
                        }
                        rest = rest.dropFirst(n)
                        remaining -= Int64(n)
                        position += Int64(n)
                    } else {
                        let n = Int(min(padding, Int64(rest.count)))
                        rest = rest.dropFirst(n)
                        padding -= Int64(n)
                        position += Int64(n)
                    }
                    if !inHeader, remaining == 0, padding == 0 { try finishEntry() }
                }
            }
        } catch where error == stop {
            return (position, false)
        } catch where error.operation == "decompress" {
            // libarchive's words ("truncated gzip input"), with the archive they are about.
            throw StorageError(.malformedArchive, "read archive", path: path, reason: error.reason)
        }
        guard ended || (inHeader && header.isEmpty) else {
            throw StorageError(.malformedArchive, "read archive", path: path,
                               reason: "the archive is truncated: its stream ends inside a member, \(position) bytes in")
        }
        return (position, ended)
    }
}
