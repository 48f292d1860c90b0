import CArchive
import GraphDriver
import StrataSystem
import SystemPackage

/// Reads a plain, gzip or zstd stream (told apart by its first bytes) and hands out its
/// uncompressed bytes block by block, with libarchive's filters.
public final class StreamDecompressor {
    private let archive: OpaquePointer
    private var started = false

    /// Opens a decompressor on `input`.
    public init(input: FileDescriptor) throws(StorageError) {
        try LibArchive.load(for: "decompress")
        guard let a = archive_read_new() else {
            throw StorageError(.io, "decompress", reason: "libarchive could not allocate a reader")
        }
        archive = a
        archive_read_support_format_raw(a)
        archive_read_support_filter_gzip(a)
        archive_read_support_filter_zstd(a)
        archive_read_support_filter_none(a)
        guard archive_read_open_fd(a, input.rawValue, 1 << 20) == ARCHIVE_OK else {
            throw failure("open the stream")
        }
    }

    deinit { archive_read_free(archive) }

    /// The compression found at the start of the stream.
    public var compression: StreamCompression {
        switch archive_filter_code(archive, 0) {
        case ARCHIVE_FILTER_GZIP: .gzip
        case ARCHIVE_FILTER_ZSTD: .zstd
        default: .none
        }
    }

    /// Calls `body` with each block of uncompressed bytes, in order, until the end.
    public func forEachBlock(_ body: (UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) {
        if !started {
            started = true
            var entry: OpaquePointer?
            let status = archive_read_next_header(archive, &entry)
            if status == ARCHIVE_EOF { return }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure("read the stream") }
        }
        try LibArchive.forEachDataBlock(archive, failure: { failure("decompress the stream") }) { (block, _) throws(StorageError) in
            try body(block)
        }
    }

    private func failure(_ what: String) -> StorageError {
        let message = LibArchive.errorMessage(archive)
        return StorageError(.malformedArchive, "decompress", reason: "cannot \(what): \(message)")
    }
}
