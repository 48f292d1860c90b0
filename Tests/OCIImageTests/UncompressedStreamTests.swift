import Foundation
import GraphDriver
@testable import OCIImage
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The decompressor thread's pipe.
@Suite("Uncompressed stream")
struct UncompressedStreamTests {
    @Test("both ends of the pipe are close-on-exec, and the stream's digest is the plain bytes' digest")
    func pipeIsCloseOnExec() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("strata-stream-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // More than a pipe holds: the decompressor blocks with its write end open.
        let plain = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let blob = directory.appendingPathComponent("blob")
        try plain.write(to: blob)

        let stream = try UncompressedStream(path: FilePath(blob.path))
        var pipeStatus = stat()
        #expect(fstat(stream.output.rawValue, &pipeStatus) == 0)
        // Both ends of a pipe share one inode: find the write end among this process's descriptors.
        var ends = 0
        for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            guard let fd = Int32(entry) else { continue }
            var status = stat()
            guard fstat(fd, &status) == 0, status.st_ino == pipeStatus.st_ino, status.st_dev == pipeStatus.st_dev else { continue }
            ends += 1
            #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0, "descriptor \(fd) of the stream's pipe is inherited by child processes")
        }
        #expect(ends == 2)
        let digest = try stream.finish()
        #expect(digest == LayoutBuilder.digest(plain))
    }
}
