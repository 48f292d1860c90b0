import CArchive
import GraphDriver
import StreamCodecs
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A PAX tar stream written with libarchive straight to a file descriptor, optionally gzip- or
/// zstd-compressed. It counts the bytes that reach the descriptor.
///
/// The format is full PAX (`archive_write_set_format_pax`), not `pax_restricted`: the restricted
/// writer drops the nanoseconds of an mtime unless the entry needs an extended header for another
/// reason, and layers must keep sub-second mtimes. GNU tar writes an extended header for every
/// entry too. Xattrs go out only as `SCHILY.xattr.*` records, the form GNU tar reads and writes.
final class ArchiveWriter {
    /// The libarchive writer.
    private let archive: OpaquePointer
    /// One entry object, cleared and refilled for every header: no allocation per entry.
    private let entry: OpaquePointer
    /// The header `writeHeader` writes next, filled through its setters.
    var header: TarHeader { TarHeader(entry: entry) }
    private let sink: Sink

    /// Where the compressed bytes go, and how many went there.
    private final class Sink {
        let output: FileDescriptor
        var bytesWritten: Int64 = 0
        var error: Errno?
        /// Set when the stream is dropped unfinished: nothing more may reach the descriptor, so
        /// a failed export never ends with the end-of-archive blocks of a complete-looking tar.
        var abandoned = false
        init(output: FileDescriptor) { self.output = output }
    }

    /// Opens a stream on `output` (not closed by the writer).
    init(output: FileDescriptor, compression: StreamCompression) throws(StorageError) {
        try LibArchive.load(for: "export layer")
        guard let archive = archive_write_new() else {
            throw StorageError(.io, "export layer", reason: "libarchive could not allocate a writer")
        }
        self.archive = archive
        self.entry = archive_entry_new()
        self.sink = Sink(output: output)
        do throws(StorageError) {
            try check(archive_write_set_format_pax(archive))
            try check(archive_write_set_options(archive, "pax:xattrheader=SCHILY"))
            switch compression {
            case .none:
                // Big blocks mean few write(2) calls; the end is padded to 10 KiB like GNU tar.
                try check(archive_write_set_bytes_per_block(archive, 128 * 1024))
                try check(archive_write_set_bytes_in_last_block(archive, 10240))
            case .gzip:
                try check(archive_write_add_filter_gzip(archive))
                try check(archive_write_set_bytes_in_last_block(archive, 1))
            case .zstd:
                try check(archive_write_add_filter_zstd(archive))
                try check(archive_write_set_bytes_in_last_block(archive, 1))
            }
            let context = Unmanaged.passUnretained(sink).toOpaque()
            try check(archive_write_open2(archive, context, nil, { _, context, buffer, length in
                let sink = Unmanaged<ArchiveWriter.Sink>.fromOpaque(context!).takeUnretainedValue()
                if sink.abandoned { return -1 }
                do throws(Errno) {
                    try sink.output.writeFully(UnsafeRawBufferPointer(start: buffer, count: length))
                } catch {
                    sink.error = error
                    return -1
                }
                sink.bytesWritten += Int64(length)
                return length
            }, nil, nil))
        } catch {
            archive_entry_free(entry)
            archive_write_free(archive)
            throw error
        }
    }

    deinit {
        if !finished { sink.abandoned = true }
        archive_entry_free(entry)
        archive_write_free(archive)
    }

    /// Whether `finish()` completed the stream.
    private var finished = false

    /// Writes the header built in `entry`.
    func writeHeader(path: @autoclosure () -> String) throws(StorageError) {
        let status = archive_write_header(archive, entry)
        if status < ARCHIVE_WARN { throw failure("write the header of", path: path()) }
    }

    /// Writes file content for the current entry.
    @inline(__always)
    func writeData(_ buffer: UnsafeRawBufferPointer, path: @autoclosure () -> String) throws(StorageError) {
        var offset = 0
        while offset < buffer.count {
            let n = archive_write_data(archive, buffer.baseAddress! + offset, buffer.count - offset)
            if n <= 0 { throw failure("write the content of", path: path()) }
            offset += n
        }
    }

    /// Ends the stream (end-of-archive blocks, compression trailer) and returns the number of
    /// bytes written to the descriptor.
    func finish() throws(StorageError) -> Int64 {
        if archive_write_close(archive) != ARCHIVE_OK { throw failure("finish", path: nil) }
        finished = true
        return sink.bytesWritten
    }

    private func check(_ status: Int32) throws(StorageError) {
        if status < ARCHIVE_WARN { throw failure("set up", path: nil) }
    }

    private func failure(_ what: String, path: String?) -> StorageError {
        if let errno = sink.error {
            return StorageError("export layer: write the tar stream", path: path, errno: errno)
        }
        let message = LibArchive.errorMessage(archive)
        return StorageError(.io, "export layer: \(what) the tar stream", path: path, reason: message)
    }
}
