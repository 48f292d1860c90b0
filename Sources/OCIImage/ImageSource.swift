import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// An image tarball opened for reading: the file, kept open for the whole import, and where
/// its members lie. Nothing is unpacked to disk: a plain tar's members are read with `pread` at
/// their offsets; a gzip- or zstd-compressed tar is read in passes (``CompressedTar``).
final class ImageArchive {
    let file: FileDescriptor
    let index: TarIndex
    let path: String
    /// For a compressed tar: the small members its first pass kept, by ordinal.
    let compressed: [Int: [UInt8]]?

    init(path: String) throws(StorageError) {
        self.path = path
        do throws(Errno) {
            file = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
        } catch {
            throw StorageError("import image", path: path, errno: error)
        }
        do throws(StorageError) {
            let magic = try Self.peek(file, at: 0, count: 6, path: path)
            if magic.starts(with: [0x1F, 0x8B]) || magic.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) {
                (index, compressed) = try CompressedTar.index(path: path)
                return
            }
            if magic.starts(with: "BZh".utf8) { throw Self.unreadable(path, "bzip2", "bunzip2") }
            if magic.elementsEqual([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { throw Self.unreadable(path, "xz", "unxz") }
            index = try TarIndex(file: file, path: path)
            compressed = nil
        } catch {
            file.closeQuietly()
            throw error
        }
    }

    deinit { file.closeQuietly() }

    private static func unreadable(_ path: String, _ kind: String, _ tool: String) -> StorageError {
        StorageError(.unsupported, "import image", path: path, reason:
            "the archive is \(kind)-compressed, which Strata does not read; decompress it (\(tool)) and import the tar")
    }

    /// A member's bytes, or `nil` when the archive has no such member.
    func contents(of name: String) throws(StorageError) -> Data? {
        guard let compressed else { return try index.contents(of: name, file: file).map { Data($0) } }
        guard let member = index.member(name) else { return nil }
        guard let bytes = compressed[member.ordinal] else {
            throw StorageError(.unsupported, "import image", path: path, reason:
                "\(name) (\(member.size) bytes) is too big to read from a compressed archive; decompress the archive and import the tar")
        }
        return Data(bytes)
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    static func peek(_ file: FileDescriptor, at offset: Int64, count: Int, path: String) throws(StorageError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer { buffer.deallocate() }
        let n = try TarIndex.readFully(file, into: buffer, at: offset, path: path)
        return [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    /// The error for a member the image needs and the archive lacks: a truncated archive, when
    /// the file ends without the end-of-archive blocks; else an incomplete one.
    func missing(_ name: String, what: String) -> StorageError {
        if index.endMarkerMissing {
            return StorageError(.malformedArchive, "import image", path: path, reason:
                "the archive is truncated: it ends after \(index.fileSize) bytes without the end-of-archive blocks, and has no \(what) \(name)")
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
