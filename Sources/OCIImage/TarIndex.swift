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
    struct Member: Sendable, Hashable {
        var offset: Int64
        var size: Int64
        /// For a symbolic or hard link, the member it points to (a normalized archive path).
        var linkTarget: String?
        /// Its position among the archive's entries (how a compressed archive's pass finds it).
        var ordinal = 0
    }

    /// The members by normalized path (no leading `./`, no trailing `/`); the last one wins.
    private(set) var members: [String: Member] = [:]
    /// The archive's file size.
    let fileSize: Int64
    /// Whether the file ends after a member without the end-of-archive (zero) blocks every tar
    /// writer puts there: it was most likely cut short at a member's boundary.
    private(set) var endMarkerMissing = false
    let path: String

    /// A table made by another reader (``CompressedTar``'s first pass); offsets are unused there.
    init(members: [String: Member], size: Int64, endMarkerMissing: Bool, path: String) {
        self.members = members
        fileSize = size
        self.endMarkerMissing = endMarkerMissing
        self.path = path
    }

    /// Reads the headers of the tar in `file`.
    init(file: FileDescriptor, path: String) throws(StorageError) {
        self.path = path
        do throws(Errno) { fileSize = try file.status().size } catch {
            throw StorageError("read archive", path: path, errno: error)
        }
        let block = Int64(TarHeaderDecoder.block)
        var decoder = TarHeaderDecoder(path: path)
        var offset: Int64 = 0
        var ordinal = 0
        while true {
            guard offset + block <= fileSize else {
                // An archive may end without its two zero blocks, but not inside a header.
                if offset == fileSize, offset > 0 {
                    endMarkerMissing = true
                    return
                }
                throw truncated("it ends inside a member's header at byte \(offset)")
            }
            let bytes = try Self.readBytes(file, at: offset, count: Int(block), path: path)
            guard let header = try decoder.decode(bytes, at: offset) else { return }
            let dataOffset = offset + block
            guard header.size >= 0, dataOffset + header.size <= fileSize else {
                throw truncated("a member at byte \(offset) needs \(header.size) bytes, the file ends \(fileSize - dataOffset) bytes after its header")
            }
            offset = dataOffset + TarHeaderDecoder.paddedSize(header.size)
            let key = TarHeaderDecoder.normalize(header.name)
            switch header.kind {
            case .record(let type):
                guard header.size <= CompressedTar.smallMember else {
                    throw StorageError(.malformedArchive, "read archive", path: path, reason: "a header record of \(header.size) bytes at byte \(offset - TarHeaderDecoder.paddedSize(header.size) - block)")
                }
                decoder.absorb(type, data: try Self.readBytes(file, at: dataOffset, count: Int(header.size), path: path))
                continue
            case .file:
                members[key] = Member(offset: dataOffset, size: header.size, ordinal: ordinal)
            case .hardLink:
                // A hard link names an earlier member, which may be at the same path (a file
                // archived twice): take its contents now.
                if let target = member(header.link) { members[key] = target }
            case .symbolicLink:
                members[key] = Member(offset: 0, size: 0, linkTarget: TarHeaderDecoder.resolve(link: header.link, from: key))
            case .other:
                break  // directories and other kinds hold nothing an image needs
            }
            ordinal += 1
        }
    }

    /// The member at `name`, following links (a docker-archive's `<id>/layer.tar` is often a
    /// symbolic link to a layer stored once).
    func member(_ name: String) -> Member? {
        var key = TarHeaderDecoder.normalize(name)
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
