import Crypto
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A layer blob decompressed on a thread of its own into a pipe, hashing the uncompressed bytes
/// on the way: the applier reads a plain tar from `output`, and `finish()` gives the diff ID.
final class UncompressedStream: @unchecked Sendable {
    /// The read end of the pipe, for the applier.
    let output: FileDescriptor
    private let writeEnd: FileDescriptor
    private let input: FileDescriptor
    private var thread = pthread_t()
    private var digest: String?
    private var failure: StorageError?
    private var closed = false

    init(path: FilePath) throws(StorageError) {
        do throws(Errno) {
            input = try FileDescriptor.currentWorkingDirectory.open(at: path, .readOnly)
        } catch {
            throw StorageError("open layer blob", path: path.string, errno: error)
        }
        // O_CLOEXEC: a process started meanwhile (a helper the driver runs) must not keep the
        // write end open, or the applier would never see the end of the stream.
        do throws(Errno) {
            (output, writeEnd) = try FileDescriptor.pipe(options: .closeOnExec)
        } catch {
            input.closeQuietly()
            throw StorageError("decompress layer", path: path.string, errno: error)
        }
        let context = Unmanaged.passRetained(self).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            let stream = Unmanaged<UncompressedStream>.fromOpaque(raw!).takeRetainedValue()
            stream.pump()
            return nil
        }, context)
        if result != 0 {
            Unmanaged<UncompressedStream>.fromOpaque(context).release()
            output.closeQuietly()
            writeEnd.closeQuietly()
            input.closeQuietly()
            let error = Errno(rawValue: result)
            throw StorageError(.io, "decompress layer", path: path.string,
                               reason: "cannot start the decompressor thread: \(error)", errno: error)
        }
    }

    private func pump() {
        defer { writeEnd.closeQuietly() }
        do throws(StorageError) {
            let decompressor = try StreamDecompressor(input: input)
            var hasher = SHA256()
            try decompressor.forEachBlock { (block) throws(StorageError) in
                hasher.update(bufferPointer: block)
                do throws(Errno) { try writeEnd.writeFully(block) } catch {
                    // The reader stopped (an apply error): stop quietly, the apply reports why.
                    throw StorageError("decompress layer", errno: error)
                }
            }
            digest = "sha256:" + OCIImporter.hex(hasher.finalize())
        } catch {
            failure = error
        }
    }

    /// Waits for the decompressor and returns the uncompressed stream's digest.
    func finish() throws(StorageError) -> String {
        close()
        if let failure { throw failure }
        return digest ?? ""
    }

    /// Ends the stream (joining the thread); safe to call twice.
    ///
    /// Whatever the applier left unread is read and dropped first: it is still part of the
    /// stream's digest, and a decompressor writing into a pipe nobody reads would get SIGPIPE.
    func close() {
        guard !closed else { return }
        closed = true
        var sink = [UInt8](repeating: 0, count: 1 << 16)
        while ((try? sink.withUnsafeMutableBytes { buffer throws(Errno) in try output.readSome(into: buffer) }) ?? 0) > 0 {}
        output.closeQuietly()
        pthread_join(thread, nil)
        input.closeQuietly()
    }
}
