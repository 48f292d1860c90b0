import FoundationEssentials
import GraphDriver
import StreamCodecs

/// Where an image tarball's members are, by normalized path, read from its headers (one pass
/// with libarchive, ``TarMembers``).
struct ArchiveIndex {
    /// One member: a regular file's size and position, or a link to another member.
    struct Member: Sendable, Hashable {
        var size: Int64
        /// For a symbolic link, the member it points to (a normalized archive path).
        var linkTarget: String?
        /// Its position among the archive's entries: how a later pass finds it.
        var ordinal: Int
    }

    /// The members by normalized path (no leading `./`, no trailing `/`); the last one wins.
    var members: [String: Member] = [:]
    /// Whether the file ends after a member without the end-of-archive (zero) blocks every tar
    /// writer puts there: it was most likely cut short at a member's boundary.
    var endMarkerMissing = false
    /// The size of the (uncompressed) tar stream.
    var streamSize: Int64 = 0

    /// The member at `name`, following symbolic links (a docker-archive's `<id>/layer.tar` is
    /// often a link to a layer stored once).
    func member(_ name: String) -> Member? {
        var key = TarMembers.normalize(name)
        for _ in 0..<16 {
            guard let member = members[key] else { return nil }
            guard let target = member.linkTarget else { return member }
            key = target
        }
        return nil
    }
}

/// An image tarball opened for reading (plain, or compressed by anything libarchive reads),
/// never unpacked to disk.
///
/// It is read in passes, each front to back with libarchive (``TarMembers``): the first records
/// every member's header and keeps the small members the image's description needs (JSON,
/// `repositories`, small blobs); each layer is then streamed by a pass of its own that stops at
/// the layer's member. For a plain tar libarchive seeks over the members a pass skips.
final class ImageArchive {
    let index: ArchiveIndex
    let path: String
    /// The small members the first pass kept, by ordinal.
    private let kept: [Int: [UInt8]]

    /// Members kept by the first pass: at most this big each, and this much in all.
    static let smallMember: Int64 = 4 << 20
    static let keptInAll: Int64 = 64 << 20

    init(path: String) throws(StorageError) {
        self.path = path
        let reader = try TarMembers(path: path)
        var index = ArchiveIndex()
        var kept: [Int: [UInt8]] = [:]
        var keptBytes: Int64 = 0
        while let entry = try reader.next() {
            switch entry.kind {
            case .file:
                index.members[entry.name] = ArchiveIndex.Member(size: entry.size, ordinal: entry.ordinal)
                let key = entry.name
                let wanted = key.hasSuffix(".json") || key == "repositories" || key == "oci-layout" || key.hasPrefix("blobs/")
                if wanted, entry.size <= Self.smallMember, keptBytes + entry.size <= Self.keptInAll {
                    keptBytes += entry.size
                    kept[entry.ordinal] = try reader.contents()
                }
            case .hardLink:
                // A hard link names an earlier member, which may be at the same path (a file
                // archived twice): take its place now.
                if let target = index.member(entry.link) { index.members[entry.name] = target }
            case .symbolicLink:
                index.members[entry.name] = ArchiveIndex.Member(
                    size: 0, linkTarget: TarMembers.resolve(link: entry.link, from: entry.name), ordinal: entry.ordinal)
            case .other:
                break  // directories and other kinds hold nothing an image needs
            }
        }
        index.endMarkerMissing = reader.endMarkerMissing
        index.streamSize = reader.streamSize
        self.index = index
        self.kept = kept
    }

    /// A member's bytes, or `nil` when the archive has no such member. One the first pass did
    /// not keep is read by a pass of its own.
    func contents(of name: String, limit: Int64 = 64 << 20) throws(StorageError) -> Data? {
        guard let member = index.member(name) else { return nil }
        if let bytes = kept[member.ordinal] { return Data(bytes) }
        guard member.size <= limit else {
            throw StorageError(.invalidArgument, "read archive", path: path,
                               reason: "\(name) is \(member.size) bytes, more than such a member can be")
        }
        var bytes = Data()
        try Self.stream(path: path, ordinal: member.ordinal) { (block) throws(StorageError) in bytes.append(contentsOf: block) }
        return bytes
    }

    /// A pass that hands the data of the member numbered `ordinal` to `body`, then stops.
    static func stream(path: String, ordinal: Int,
                       _ body: (UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) {
        let reader = try TarMembers(path: path)
        while let entry = try reader.next(), entry.ordinal <= ordinal {
            guard entry.ordinal == ordinal else { continue }
            try reader.forEachBlock(body)
            return
        }
        throw StorageError(.malformedArchive, "read archive", path: path,
                           reason: "the archive is truncated: entry \(ordinal) is gone")
    }

    /// The error for a member the image needs and the archive lacks: a truncated archive, when
    /// the file ends without the end-of-archive blocks; else an incomplete one.
    func missing(_ name: String, what: String) -> StorageError {
        if index.endMarkerMissing {
            return StorageError(.malformedArchive, "import image", path: path, reason:
                "the archive is truncated: it ends after \(index.streamSize) bytes without the end-of-archive blocks, and has no \(what) \(name)")
        }
        return StorageError(.notFound, "import image", path: path + "!" + name, reason: "the archive has no \(what) \(name)")
    }

    /// A few member names, for errors that say what the archive holds.
    var sampleOfMembers: String {
        let names = index.members.keys.sorted()
        return names.isEmpty ? "no files" : names.prefix(6).joined(separator: ", ") + (names.count > 6 ? ", …" : "")
    }
}

/// Where an OCI image's blobs are: a layout directory, or an oci-archive tarball holding one.
enum OCIBlobStore {
    case directory(URL)
    case archive(ImageArchive)

    /// The path errors name for `name` (a member or a file under the layout).
    func location(_ name: String) -> String {
        switch self {
        case .directory(let url): url.appendingPathComponent(name).path
        case .archive(let archive): archive.path + "!" + name
        }
    }

    /// The error for `name` (described as `what`) missing.
    func missing(_ name: String, what: String) -> StorageError {
        switch self {
        case .directory(let url):
            StorageError(.notFound, "import image", path: url.appendingPathComponent(name).path,
                         reason: "cannot read the \(what): it is missing or unreadable")
        case .archive(let archive):
            archive.missing(name, what: what)
        }
    }

    /// `index.json`, `oci-layout` or a blob, read whole; `nil` when it is not there.
    func read(_ name: String) throws(StorageError) -> Data? {
        switch self {
        case .directory(let url):
            return try? Data(contentsOf: url.appendingPathComponent(name))
        case .archive(let archive):
            return try archive.contents(of: name)
        }
    }

    /// The name of a blob: `blobs/sha256/HEX`.
    static func blobName(_ digest: String) -> String {
        "blobs/sha256/" + digest.dropFirst("sha256:".count)
    }
}
