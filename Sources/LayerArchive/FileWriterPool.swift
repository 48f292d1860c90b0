import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A small pool of threads that finish regular files while the tar stream goes on being read.
///
/// The reader creates each file (so the namespace changes in stream order) and hands over the
/// open descriptor, the file's bytes and its metadata; a writer does the `write`, `fchown`,
/// `fchmod`, `fsetxattr`, `futimens` and `close`. Creating files in parallel pays even on two
/// cores, because most of the cost is in the kernel. Pending work is bounded by bytes and by
/// count, so memory and open descriptors stay small whatever the stream holds.
final class FileWriterPool: @unchecked Sendable {
    /// One file to finish: the pool owns `fd` and `data` from `submit` on.
    struct Job {
        var fd: FileDescriptor
        var data: UnsafeMutableRawBufferPointer
        var length: Int
        var metadata: FileMetadata
    }

    /// Guards the queue and the counts; condition `notEmpty` wakes writers, `notFull` the reader.
    private let lock = ConditionLock(conditions: 2)
    private static let notEmpty = 0
    private static let notFull = 1
    private var queue: [Job] = []
    private var head = 0
    private var pendingBytes = 0
    private var pendingJobs = 0
    private var closed = false
    private var firstError: StorageError?
    private var threads: [JoinableThread] = []
    private let maxPendingBytes: Int
    private let maxPendingJobs: Int

    init(threads count: Int, maxPendingBytes: Int = 16 << 20, maxPendingJobs: Int = 256) {
        self.maxPendingBytes = maxPendingBytes
        self.maxPendingJobs = maxPendingJobs
        for _ in 0..<count {
            if let thread = try? JoinableThread.start({ self.work() }) { threads.append(thread) }
        }
    }

    /// Whether any writer thread started (if none did, the caller writes inline).
    var isRunning: Bool { !threads.isEmpty }

    /// Queues a job, waiting while the pool is full. Throws the first writer error, if any; the
    /// job is then cleaned up here.
    func submit(_ job: Job) throws(StorageError) {
        lock.lock()
        while firstError == nil && (pendingBytes + job.length > maxPendingBytes || pendingJobs >= maxPendingJobs)
            && pendingJobs > 0 {
            lock.wait(Self.notFull)
        }
        if let error = firstError {
            lock.unlock()
            Self.discard(job)
            throw error
        }
        queue.append(job)
        pendingBytes += job.length
        pendingJobs += 1
        lock.signal(Self.notEmpty)
        lock.unlock()
    }

    /// Waits until every queued job is done and the threads have exited; throws the first error.
    func finish() throws(StorageError) {
        lock.lock()
        closed = true
        lock.broadcast(Self.notEmpty)
        lock.unlock()
        for thread in threads { thread.join() }
        threads.removeAll()
        // Jobs left behind after an error still own descriptors and buffers.
        while head < queue.count {
            Self.discard(queue[head])
            head += 1
        }
        if let firstError { throw firstError }
    }

    private func work() {
        while true {
            lock.lock()
            while head == queue.count && !closed { lock.wait(Self.notEmpty) }
            if head == queue.count || firstError != nil {
                lock.unlock()
                return
            }
            let job = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            lock.unlock()

            var failure: StorageError?
            do throws(StorageError) {
                try Self.perform(job)
            } catch {
                failure = error
            }

            lock.lock()
            pendingBytes -= job.length
            pendingJobs -= 1
            if let failure, firstError == nil { firstError = failure }
            lock.broadcast(Self.notFull)
            lock.unlock()
        }
    }

    /// Writes the data, applies the metadata and closes: what a writer thread does with a job,
    /// and what the reader does itself when there is no pool.
    static func perform(_ job: Job) throws(StorageError) {
        defer { discard(job) }
        try attempt("apply diff", job.metadata.path) { () throws(Errno) in
            try job.fd.writeFully(UnsafeRawBufferPointer(rebasing: job.data[0..<job.length]))
        }
        try job.metadata.apply(to: job.fd, setTimes: true)
    }

    private static func discard(_ job: Job) {
        job.fd.closeQuietly()
        job.data.deallocate()
    }
}
