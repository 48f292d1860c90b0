import CArchive
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The members of a tar file (plain or compressed by any filter libarchive has), read front to
/// back with libarchive: each member's header, and on request its data, whole or block by block.
///
/// This is how image tarballs (docker-archive, oci-archive) are read without unpacking them.
/// A member whose data is not asked for is skipped: for a plain tar libarchive seeks over it, so
/// a pass over the headers alone reads little more than the headers. Stopping early is dropping
/// the value.
///
/// Truncation is reported as `StorageError(.malformedArchive, …)` naming the file, and a file
/// that ends after a member without the end-of-archive blocks is told apart
/// (``endMarkerMissing``): it was most likely cut short at a member's boundary.
public final class TarMembers {
    /// What a member is.
    public enum Kind: Sendable, Hashable {
        case file, hardLink, symbolicLink, other
    }

    /// One member's header.
    public struct Member: Sendable, Hashable {
        /// Its path, normalized (no leading `./`, no trailing `/`).
        public var name: String
        public var kind: Kind
        /// The size of its data (zero for links and directories).
        public var size: Int64
        /// For a link, the path it names, as stored.
        public var link: String
        /// Its position among the archive's members, from 0.
        public var ordinal: Int
    }

    private let archive: OpaquePointer
    private let entry: OpaquePointer
    private let file: FileDescriptor
    /// The file's path, named in errors.
    public let path: String
    private let fileSize: Int64
    private var ordinal = -1
    /// Where the previous member's data (padding included) ended in the uncompressed stream.
    private var previousEnd: Int64 = 0
    /// After ``next()`` returned `nil`: whether the file ended without end-of-archive blocks.
    public private(set) var endMarkerMissing = false
    /// After ``next()`` returned `nil`: the size of the uncompressed tar stream read.
    public private(set) var streamSize: Int64 = 0

    /// Opens the tar file at `path` (relative to the working directory, or absolute).
    public init(path: String) throws(StorageError) {
        self.path = path
        try LibArchive.load(for: "read archive")
        let opened: FileDescriptor = try attempt("read archive", path) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.open(at: FilePath(path), .readOnly)
        }
        do throws(Errno) { fileSize = try opened.status().size } catch {
            opened.closeQuietly()
            throw StorageError("read archive", path: path, errno: error)
        }
        file = opened
        guard let a = archive_read_new(), let e = archive_entry_new() else {
            file.closeQuietly()
            throw StorageError(.io, "read archive", path: path, reason: "libarchive could not allocate a reader")
        }
        archive = a
        entry = e
        archive_read_support_format_tar(a)
        archive_read_support_filter_all(a)
        if archive_read_open_fd(a, file.rawValue, 1 << 20) != ARCHIVE_OK {
            throw failure()
        }
    }

    deinit {
        archive_read_free(archive)
        archive_entry_free(entry)
        file.closeQuietly()
    }

    /// The next member's header, skipping whatever of the previous member's data was not read;
    /// `nil` at the end of the archive.
    public func next() throws(StorageError) -> Member? {
        if ordinal >= 0 {
            if archive_read_data_skip(archive) != ARCHIVE_OK { throw failure() }
            previousEnd = archive_filter_bytes(archive, 0)
            try checkWithinFile()
        }
        let status = archive_read_next_header2(archive, entry)
        switch status {
        case ARCHIVE_EOF:
            streamSize = archive_filter_bytes(archive, 0)
            // libarchive consumes the end-of-archive blocks when they are there, and ends
            // quietly at a member's boundary when they are not.
            endMarkerMissing = ordinal >= 0 && streamSize == previousEnd
            return nil
        case ARCHIVE_OK, ARCHIVE_WARN:
            break
        default:
            throw failure()
        }
        ordinal += 1
        let name = Self.normalize(archive_entry_pathname(entry).map { String(cString: $0) } ?? "")
        if let target = archive_entry_hardlink(entry) {
            return Member(name: name, kind: .hardLink, size: 0, link: String(cString: target), ordinal: ordinal)
        }
        let kind: Kind = switch archive_entry_filetype(entry) & S_IFMT {
        case S_IFREG: .file
        case S_IFLNK: .symbolicLink
        default: .other
        }
        let link = kind == .symbolicLink ? archive_entry_symlink(entry).map { String(cString: $0) } ?? "" : ""
        let size = kind == .file ? archive_entry_size(entry) : 0
        return Member(name: name, kind: kind, size: size, link: link, ordinal: ordinal)
    }

    /// Calls `body` with each block of the current member's data, in order.
    public func forEachBlock(_ body: (UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) {
        try LibArchive.forEachDataBlock(archive, failure: failure) { (block, _) throws(StorageError) in
            try body(block)
        }
    }

    /// The current member's whole data (for small members: JSON, `repositories`).
    public func contents() throws(StorageError) -> [UInt8] {
        var bytes: [UInt8] = []
        try forEachBlock { (block) throws(StorageError) in bytes.append(contentsOf: block) }
        return bytes
    }

    /// For a plain tar: a member that runs past the end of the file is a truncated archive
    /// (libarchive seeks over a skipped member, past the end of the file if need be).
    private func checkWithinFile() throws(StorageError) {
        guard archive_filter_code(archive, 0) == ARCHIVE_FILTER_NONE, previousEnd > fileSize else { return }
        throw StorageError(.malformedArchive, "read archive", path: path, reason:
            "the archive is truncated: member \(ordinal) needs \(previousEnd) bytes of the file, which has \(fileSize)")
    }

    private func failure() -> StorageError {
        let message = LibArchive.errorMessage(archive)
        let code = archive_errno(archive)
        let reason = message.lowercased().contains("truncated")
            ? "the archive is truncated: \(message)"
            : "not a tar archive, or damaged: \(message)"
        let offset = archive_filter_bytes(archive, 0)
        return StorageError(.malformedArchive, "read archive", path: path,
                            reason: reason + " (\(offset) bytes in)",
                            // A system error's errno; not libarchive's codes for a bad format.
                            errno: code > 0 && code != EILSEQ && code != EINVAL ? Errno(rawValue: code) : nil)
    }

    /// Where a symbolic link at `name` points, as an archive path: relative to its directory.
    public static func resolve(link: String, from name: String) -> String {
        let directory = name.split(separator: "/").dropLast().joined(separator: "/")
        return normalize(link.hasPrefix("/") || directory.isEmpty ? link : directory + "/" + link)
    }

    /// `./a//b/` → `a/b`.
    public static func normalize(_ name: String) -> String {
        var parts: [Substring] = []
        for part in name.split(separator: "/") where part != "." {
            if part == ".." { _ = parts.popLast() } else { parts.append(part) }
        }
        return parts.joined(separator: "/")
    }
}
