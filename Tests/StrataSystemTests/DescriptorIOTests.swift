import CLinux
@testable import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("flock, reads and writes, EINTR")
struct DescriptorIOTests {
    @Test func exclusiveLockBlocksASecondOpenFileDescription() throws {
        let dir = try TemporaryDirectory()
        try dir.write("lockfile", "")
        let first = try dir.descriptor.open(at: "lockfile", .readWrite)
        let second = try dir.descriptor.open(at: "lockfile", .readWrite)
        defer { first.closeQuietly(); second.closeQuietly() }

        try first.lock(exclusive: true)
        expectErrno(.wouldBlock) { try second.lock(exclusive: true, wait: false) }
        expectErrno(.wouldBlock) { try second.lock(exclusive: false, wait: false) }
        try first.unlock()
        try second.lock(exclusive: true, wait: false)
        expectErrno(.wouldBlock) { try first.lock(exclusive: false, wait: false) }
        try second.unlock()

        // Shared locks coexist; an exclusive one then waits for both to go.
        try first.lock(exclusive: false, wait: false)
        try second.lock(exclusive: false, wait: false)
        let third = try dir.descriptor.open(at: "lockfile", .readOnly)
        defer { third.closeQuietly() }
        expectErrno(.wouldBlock) { try third.lock(exclusive: true, wait: false) }
        try first.unlock()
        try second.unlock()
        try third.lock(exclusive: true, wait: false)

        // Closing the descriptor drops its lock.
        third.closeQuietly()
        try first.lock(exclusive: true, wait: false)
    }

    @Test(needsRoot) func ioctlReadsAndWritesFsxattr() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "project")
        // ext4 (under /tmp here) answers FS_IOC_FSGETXATTR and FS_IOC_FSSETXATTR.
        try dir.write("file", "x")
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        defer { fd.closeQuietly() }
        var attributes = fsxattr()
        try fd.control(UInt(STRATA_FS_IOC_FSGETXATTR), &attributes)
        #expect(attributes.fsx_projid == 0)
        #expect(attributes.fsx_xflags & STRATA_FS_XFLAG_PROJINHERIT == 0)

        // A directory takes the project-inherit flag and keeps it.
        let directory = try dir.descriptor.openDirectory(at: "project")
        defer { directory.closeQuietly() }
        var flags = fsxattr()
        try directory.control(UInt(STRATA_FS_IOC_FSGETXATTR), &flags)
        flags.fsx_xflags |= STRATA_FS_XFLAG_PROJINHERIT
        try directory.control(UInt(STRATA_FS_IOC_FSSETXATTR), &flags)
        var reread = fsxattr()
        try directory.control(UInt(STRATA_FS_IOC_FSGETXATTR), &reread)
        #expect(reread.fsx_xflags & STRATA_FS_XFLAG_PROJINHERIT == STRATA_FS_XFLAG_PROJINHERIT)

        // A pipe has no such ioctl.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        expectErrno(.inappropriateIOCTLForDevice) {
            try FileDescriptor(rawValue: ends[0]).control(UInt(STRATA_FS_IOC_FSGETXATTR), &attributes)
        }
    }

    @Test func writeFullyReadToEndAndReadSome() throws {
        let dir = try TemporaryDirectory()
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let fd = try dir.descriptor.open(at: "data", .readWrite, options: [.create], permissions: .init(rawValue: 0o600))
        defer { fd.closeQuietly() }
        try bytes.withUnsafeBytes { try fd.writeFully($0) }
        try fd.synchronize()
        #expect(try fd.status().size == 300_000)
        _ = try fd.seek(offset: 0, from: .start)
        #expect(try fd.readToEnd() == bytes)
        _ = try fd.seek(offset: 299_990, from: .start)
        var tail = [UInt8](repeating: 0, count: 64)
        let n = try tail.withUnsafeMutableBytes { try fd.readSome(into: $0) }
        #expect(n == 10)
        #expect(Array(tail[0..<10]) == Array(bytes[299_990...]))
        #expect(try tail.withUnsafeMutableBytes { try fd.readSome(into: $0) } == 0)
    }

    @Test func eintrIsRetriedAndOtherErrorsAreReturned() throws {
        var calls = 0
        let result = valueOrErrno { () -> Int32 in
            calls += 1
            if calls < 4 { setErrno(EINTR); return -1 }
            return 42
        }
        #expect(calls == 4)
        #expect(try result.get() == 42)

        calls = 0
        let failure = valueOrErrno { () -> Int in
            calls += 1
            setErrno(EACCES)
            return -1
        }
        #expect(calls == 1)
        expectErrno(.permissionDenied) { try failure.get() }
        // Only -1 means failure: other negative values pass through.
        #expect(try valueOrErrno { Int32(-2) }.get() == -2)
    }

    @Test func aSignalDuringABlockingReadIsNotAnError() throws {
        // A handler without SA_RESTART makes a blocked read(2) fail with EINTR; the wrapper
        // must retry it and return the byte written later.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in signalCount.wrappingIncrement() }
        action.sa_flags = 0
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        #expect(sigaction(SIGUSR2, &action, &previous) == 0)
        defer { _ = sigaction(SIGUSR2, &previous, nil) }

        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let reader = FileDescriptor(rawValue: ends[0])
        let writer = FileDescriptor(rawValue: ends[1])
        defer { reader.closeQuietly(); writer.closeQuietly() }

        let box = ReadResult()
        let before = signalCount.value
        var thread = pthread_t()
        let context = Unmanaged.passRetained(ReaderContext(descriptor: reader, result: box)).toOpaque()
        let created = pthread_create(&thread, nil, { raw in
            let context = Unmanaged<ReaderContext>.fromOpaque(raw!).takeRetainedValue()
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGUSR2)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1, alignment: 1)
            defer { buffer.deallocate() }
            do throws(Errno) {
                let count = try context.descriptor.readSome(into: buffer)
                context.result.set(.success((count, buffer[0])))
            } catch {
                context.result.set(.failure(error))
            }
            return nil
        }, context)
        #expect(created == 0)

        usleep(100_000)  // let the reader block in read(2)
        for sent in 1...3 {
            #expect(pthread_kill(thread, SIGUSR2) == 0)
            // The next signal only once this one was handled: two pending SIGUSR2s merge into one.
            var waited = 0
            while signalCount.value - before < sent && waited < 5_000 {
                usleep(1_000)
                waited += 1
            }
        }
        var byte: UInt8 = 0x5A
        _ = write(writer.rawValue, &byte, 1)
        #expect(pthread_join(thread, nil) == 0)

        #expect(signalCount.value - before == 3)
        let outcome = try #require(box.value)
        let (count, value) = try outcome.get()
        #expect(count == 1)
        #expect(value == 0x5A)
    }
}

/// Counts SIGUSR2 deliveries (the handler may only touch async-signal-safe state).
private final class SignalCounter: @unchecked Sendable {
    private let storage = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    init() { storage.initialize(to: 0) }
    func wrappingIncrement() { storage.pointee &+= 1 }
    var value: Int { storage.pointee }
}
private let signalCount = SignalCounter()

private final class ReadResult: @unchecked Sendable {
    private(set) var value: Result<(Int, UInt8), Errno>?
    func set(_ v: Result<(Int, UInt8), Errno>) { value = v }
}

private final class ReaderContext {
    let descriptor: FileDescriptor
    let result: ReadResult
    init(descriptor: FileDescriptor, result: ReadResult) {
        self.descriptor = descriptor
        self.result = result
    }
}

/// Sets `errno` the way a failing system call would.
private func setErrno(_ value: Int32) {
    errno = value
}
