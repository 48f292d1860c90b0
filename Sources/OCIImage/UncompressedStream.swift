import Crypto
import GraphDriver
import StreamCodecs
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A layer blob decompressed on a thread of its own into a pipe, hashing the uncompressed bytes
/// on the way: the applier reads a plain tar from `output`, and `finish()` gives the diff ID.
///
/// The blob is a whole file (a layout's blob) or a member of an oci-archive or docker-archive
/// tarball, read by a pass of libarchive up to the member. For a member the blob's own bytes are
/// hashed too (`blob`); a plain one goes straight into the pipe, a compressed one through a
/// second pipe into a decompressor thread.
final class UncompressedStream: @unchecked Sendable {
    /// The read end of the pipe, for the applier.
    let output: FileDescriptor
    private let writeEnd: FileDescriptor
    private let input: Input
    private let path: String
    private var thread: JoinableThread?
    private var digest: String?
    private var rawDigest: String?
    private var rawSize: Int64 = 0
    private var failure: StorageError?
    private var closed = false

    private enum Input {
        /// A whole file, opened (and closed) by the stream.
        case file(FileDescriptor)
        /// The member numbered `ordinal` of the tar at `path`.
        case member(path: String, ordinal: Int)
    }

    /// Streams the whole file at `path`.
    convenience init(path: FilePath) throws(StorageError) {
        let input: FileDescriptor = try attempt("open layer blob", path) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.open(at: path, .readOnly)
        }
        try self.init(input: .file(input), path: path.string)
    }

    /// Streams the member numbered `ordinal` of the tar at `archive` (plain or compressed; a pass
    /// of ``ImageArchive/stream(path:ordinal:_:)`` feeds it); `path` names the blob in errors.
    convenience init(archive: String, ordinal: Int, path: String) throws(StorageError) {
        try self.init(input: .member(path: archive, ordinal: ordinal), path: path)
    }

    private init(input: Input, path: String) throws(StorageError) {
        self.input = input
        self.path = path
        // O_CLOEXEC: a process started meanwhile (a helper the driver runs) must not keep the
        // write end open, or the applier would never see the end of the stream.
        do throws(Errno) {
            (output, writeEnd) = try FileDescriptor.pipe(options: .closeOnExec)
        } catch {
            if case .file(let fd) = input { fd.closeQuietly() }
            throw StorageError("decompress layer", path: path, errno: error)
        }
        do throws(StorageError) {
            thread = try Self.start { [self] in pump() }
        } catch {
            output.closeQuietly()
            writeEnd.closeQuietly()
            if case .file(let fd) = input { fd.closeQuietly() }
            throw error
        }
    }

    /// Starts `body` on a new thread.
    private static func start(_ body: @escaping () -> Void) throws(StorageError) -> JoinableThread {
        do throws(Errno) {
            return try JoinableThread.start(body)
        } catch {
            throw StorageError(.io, "decompress layer", reason: "cannot start the decompressor thread: \(error)", errno: error)
        }
    }

    private func pump() {
        defer { writeEnd.closeQuietly() }
        do throws(StorageError) {
            switch input {
            case .file(let fd):
                digest = try decompress(from: fd)
            case .member(let archive, let ordinal):
                digest = try stream(member: ordinal, of: archive)
            }
        } catch {
            failure = error
        }
    }

    /// Streams the member numbered `ordinal` of `archive`, hashing its own bytes: a plain layer
    /// straight into the pipe, a gzip or zstd one (told by its first bytes) through a second pipe
    /// into a decompressor on a thread of its own. Returns the uncompressed digest.
    private func stream(member ordinal: Int, of archive: String) throws(StorageError) -> String {
        var rawHasher = SHA256()
        var size: Int64 = 0
        var target = writeEnd
        var decompressor: (thread: JoinableThread, read: FileDescriptor, write: FileDescriptor)?
        var decompressed: Result<String, StorageError>?
        let streamed: Result<Void, StorageError>
        do throws(StorageError) {
            try ImageArchive.stream(path: archive, ordinal: ordinal) { (chunk) throws(StorageError) in
                if size == 0, decompressor == nil, Self.isCompressed(chunk) {
                    let (feedRead, feedWrite): (FileDescriptor, FileDescriptor)
                    do throws(Errno) { (feedRead, feedWrite) = try FileDescriptor.pipe(options: .closeOnExec) } catch {
                        throw StorageError("decompress layer", path: path, errno: error)
                    }
                    do throws(StorageError) {
                        let thread = try Self.start { [self] in
                            do throws(StorageError) { decompressed = .success(try decompress(from: feedRead)) } catch {
                                decompressed = .failure(error)
                            }
                            // The rest of the blob is still the blob's: drain it so the feeding
                            // ends and the blob digest covers every byte.
                            Self.drain(feedRead)
                        }
                        decompressor = (thread, feedRead, feedWrite)
                        target = feedWrite
                    } catch {
                        feedRead.closeQuietly()
                        feedWrite.closeQuietly()
                        throw error
                    }
                }
                rawHasher.update(bufferPointer: chunk)
                do throws(Errno) { try target.writeFully(chunk) } catch {
                    throw StorageError("decompress layer", errno: error)
                }
                size += Int64(chunk.count)
            }
            streamed = .success(())
        } catch {
            streamed = .failure(error)
        }
        let raw = "sha256:" + OCIImporter.hex(rawHasher.finalize())
        rawDigest = raw
        rawSize = size
        guard let decompressor else {
            try streamed.get()
            return raw
        }
        decompressor.write.closeQuietly()
        decompressor.thread.join()
        decompressor.read.closeQuietly()
        try streamed.get()
        guard let decompressed else { return raw }
        return try decompressed.get()
    }

    private static func isCompressed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.starts(with: [0x1F, 0x8B]) || bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD])
    }

    /// Decompresses `input` into the pipe; returns the uncompressed digest.
    private func decompress(from input: FileDescriptor) throws(StorageError) -> String {
        let decompressor = try StreamDecompressor(input: input)
        var hasher = SHA256()
        try decompressor.forEachBlock { (block) throws(StorageError) in
            hasher.update(bufferPointer: block)
            do throws(Errno) { try writeEnd.writeFully(block) } catch {
                // The reader stopped (an apply error): stop quietly, the apply reports why.
                throw StorageError("decompress layer", errno: error)
            }
        }
        return "sha256:" + OCIImporter.hex(hasher.finalize())
    }

    /// Waits for the decompressor and returns the uncompressed stream's digest.
    func finish() throws(StorageError) -> String {
        close()
        if let failure { throw failure }
        return digest ?? ""
    }

    /// The digest and size of the blob's own bytes (compressed or not), after `finish()`; only
    /// for an archive's member.
    var blob: (digest: String, size: Int64)? { rawDigest.map { ($0, rawSize) } }

    /// Ends the stream (joining the thread); safe to call twice.
    ///
    /// Whatever the applier left unread is read and dropped first: it is still part of the
    /// stream's digest, and a decompressor writing into a pipe nobody reads would get SIGPIPE.
    func close() {
        guard !closed else { return }
        closed = true
        Self.drain(output)
        output.closeQuietly()
        thread?.join()
        if case .file(let fd) = input { fd.closeQuietly() }
    }

    private static func drain(_ fd: FileDescriptor) {
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        while ((try? sink.withUnsafeMutableBytes { buffer throws(Errno) in try fd.readSome(into: buffer) }) ?? 0) > 0 {}
    }
}
