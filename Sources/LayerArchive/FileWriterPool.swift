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

    private var mutex = pthread_mutex_t()
    private var notEmpty = pthread_cond_t()
    private var notFull = pthread_cond_t()
    private var queue: [Job] = []
    private var head = 0
    private var pendingBytes = 0
    private var pendingJobs = 0
    private var closed = false
    private var firstError: StorageError?
    private var threads: [pthread_t] = []
    private let maxPendingBytes: Int
    private let maxPendingJobs: Int

    init(threads count: Int, maxPendingBytes: Int = 16 << 20, maxPendingJobs: Int = 256) {
        self.maxPendingBytes = maxPendingBytes
        self.maxPendingJobs = maxPendingJobs
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&notEmpty, nil)
        pthread_cond_init(&notFull, nil)
        for _ in 0..<count {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            let status = pthread_create(&thread, nil, { raw in
                let pool = Unmanaged<FileWriterPool>.fromOpaque(raw!).takeRetainedValue()
                pool.work()
                return nil
            }, context)
            if status == 0 {
                threads.append(thread)
            } else {
                Unmanaged<FileWriterPool>.fromOpaque(context).release()
            }
        }
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&notEmpty)
        pthread_cond_destroy(&notFull)
    }

    /// Whether any writer thread started (if none did, the caller writes inline).
    var isRunning: Bool { !threads.isEmpty }

    /// Queues a job, waiting while the pool is full. Throws the first writer error, if any; the
    /// job is then cleaned up here.
    func submit(_ job: Job) throws(StorageError) {
        pthread_mutex_lock(&mutex)
        while firstError == nil && (pendingBytes + job.length > maxPendingBytes || pendingJobs >= maxPendingJobs)
            && pendingJobs > 0 {
            pthread_cond_wait(&notFull, &mutex)
        }
        if let error = firstError {
            pthread_mutex_unlock(&mutex)
            Self.discard(job)
            throw error
        }
        queue.append(job)
        pendingBytes += job.length
        pendingJobs += 1
        pthread_cond_signal(&notEmpty)
        pthread_mutex_unlock(&mutex)
    }

    /// Waits until every queued job is done and the threads have exited; throws the first error.
    func finish() throws(StorageError) {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&notEmpty)
        pthread_mutex_unlock(&mutex)
        for thread in threads { pthread_join(thread, nil) }
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
            pthread_mutex_lock(&mutex)
            while head == queue.count && !closed { pthread_cond_wait(&notEmpty, &mutex) }
            if head == queue.count || firstError != nil {
                pthread_mutex_unlock(&mutex)
                return
            }
            let job = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            pthread_mutex_unlock(&mutex)

            var failure: StorageError?
            do throws(StorageError) {
                try Self.perform(job)
            } catch {
                failure = error
            }

            pthread_mutex_lock(&mutex)
            pendingBytes -= job.length
            pendingJobs -= 1
            if let failure, firstError == nil { firstError = failure }
            pthread_cond_broadcast(&notFull)
            pthread_mutex_unlock(&mutex)
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
