import CArchive
import GraphDriver

/// The compression of a tar stream, detected from its first bytes.
public enum StreamCompression: Sendable, Hashable {
    case none, gzip, zstd
}

/// libarchive is loaded when a tar is first read or written (see CArchive), not when the
/// process starts; this turns a missing library into an error instead of an abort. The shared
/// pieces of reading with libarchive live here too.
public enum LibArchive {
    /// Loads libarchive once; throws, naming `operation`, when it cannot be loaded.
    public static func load(for operation: String) throws(StorageError) {
        var message = [CChar](repeating: 0, count: 512)
        if strata_archive_load(&message, message.count) == 1 { return }
        let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw StorageError(.unsupported, operation,
                           reason: "cannot load libarchive (Debian package libarchive13): \(reason)")
    }

    /// The reader's or writer's last error message.
    ///
    /// The corresponding C function is `archive_error_string`.
    public static func errorMessage(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// Calls `body` with each block of the current entry's data and its offset (blocks may skip
    /// holes in a sparse file), until the entry's end; a failed read throws `failure()`.
    ///
    /// The corresponding C function is `archive_read_data_block`.
    @inlinable
    public static func forEachDataBlock(
        _ archive: OpaquePointer, failure: () -> StorageError,
        _ body: (UnsafeRawBufferPointer, Int64) throws(StorageError) -> Void
    ) throws(StorageError) {
        var buffer: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(archive, &buffer, &size, &offset)
            if status == ARCHIVE_EOF { return }
            guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure() }
            if size > 0 { try body(UnsafeRawBufferPointer(start: buffer, count: size), Int64(offset)) }
        }
    }
}
