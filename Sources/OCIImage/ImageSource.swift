import FoundationEssentials
import GraphDriver
import StrataSystem
import SystemPackage

/// An image tarball opened for reading: the file, kept open for the whole import, and where
/// its members lie. Nothing is unpacked to disk; members are read with `pread` at their offsets.
final class ImageArchive {
    let file: FileDescriptor
    let index: TarIndex
    let path: String

    init(path: String) throws(StorageError) {
        self.path = path
        do throws(Errno) {
            file = try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
        } catch {
            throw StorageError("import image", path: path, errno: error)
        }
        do throws(StorageError) {
            let magic = try Self.peek(file, at: 0, count: 6, path: path)
            let n = magic.count
            if n >= 2, magic[0] == 0x1F, magic[1] == 0x8B {
                throw Self.compressed(path, "gzip", "gunzip")
            }
            if n >= 4, magic[0..<4].elementsEqual([0x28, 0xB5, 0x2F, 0xFD]) { throw Self.compressed(path, "zstd", "unzstd") }
            if n >= 3, magic[0..<3].elementsEqual("BZh".utf8) { throw Self.compressed(path, "bzip2", "bunzip2") }
            if n == 6, magic.elementsEqual([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00]) { throw Self.compressed(path, "xz", "unxz") }
            index = try TarIndex(file: file, path: path)
        } catch {
            file.closeQuietly()
            throw error
        }
    }

    deinit { file.closeQuietly() }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    static func peek(_ file: FileDescriptor, at offset: Int64, count: Int, path: String) throws(StorageError) -> [UInt8] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer { buffer.deallocate() }
        let n = try TarIndex.readFully(file, into: buffer, at: offset, path: path)
        return [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }

    private static func compressed(_ path: String, _ kind: String, _ tool: String) -> StorageError {
        StorageError(.unsupported, "import image", path: path, reason:
            "the archive is \(kind)-compressed as a whole, which cannot be read without unpacking it first; decompress it (\(tool)) and import the tar")
    }

    /// A member's bytes, or `nil` when the archive has no such member.
    func contents(of name: String) throws(StorageError) -> Data? {
        try index.contents(of: name, file: file).map { Data($0) }
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
