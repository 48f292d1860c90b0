import CArchive
import GraphDriver
import StreamCodecs
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Reads a tar stream (plain, gzip or zstd, told apart by its first bytes) with libarchive,
/// one entry at a time.
///
/// Decompression and tar parsing are libarchive's; this type only turns its entries into typed
/// `TarEntry` values and its failures into `StorageError`s that name the entry and its offset.
final class ArchiveReader {
    private let archive: OpaquePointer
    private let entry: OpaquePointer
    /// The offset of the current entry's header in the uncompressed stream.
    private(set) var currentOffset: Int64 = 0

    /// Opens a reader on `input`, reading `blockSize` bytes at a time.
    init(input: FileDescriptor, blockSize: Int = 1 << 20) throws(StorageError) {
        try LibArchive.load(for: "apply diff")
        guard let a = archive_read_new(), let e = archive_entry_new() else {
            throw StorageError(.io, "apply diff", reason: "libarchive could not allocate a reader")
        }
        archive = a
        entry = e
        archive_read_support_format_tar(a)
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_filter_none(a)
        if archive_read_open_fd(a, input.rawValue, blockSize) != ARCHIVE_OK {
            // Every stored property is set, so deinit frees the handles.
            throw failure("open the stream")
        }
    }

    deinit {
        archive_read_free(archive)
        archive_entry_free(entry)
    }

    /// Reads the next header; `nil` at the end of the stream.
    func next() throws(StorageError) -> TarEntry? {
        let status = archive_read_next_header2(archive, entry)
        currentOffset = archive_read_header_position(archive)
        switch status {
        case ARCHIVE_EOF:
            return nil
        case ARCHIVE_OK, ARCHIVE_WARN:
            return TarEntry(entry)
        default:
            throw failure("read the entry header")
        }
    }

    /// Calls `body` with each block of the current entry's data and its offset in the file
    /// (blocks may skip holes in a sparse file).
    func forEachDataBlock(_ body: (UnsafeRawBufferPointer, Int64) throws(StorageError) -> Void) throws(StorageError) {
        try LibArchive.forEachDataBlock(archive, failure: { failure("read the entry's data") }, body)
    }

    /// A `StorageError` for a libarchive failure while doing `what`, naming the entry and offset.
    func failure(_ what: String) -> StorageError {
        let message = LibArchive.errorMessage(archive)
        let code = archive_errno(archive)
        // The entry's path, read only here: after a failed header read libarchive has cleared it.
        let path = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
        let location = path.isEmpty
            ? "at offset \(currentOffset)"
            : "entry '\(path)' at offset \(currentOffset)"
        return StorageError(
            .malformedArchive, "apply diff",
            reason: "cannot \(what) (\(location)): \(message)",
            errno: code > 0 ? Errno(rawValue: code) : nil)
    }
}
