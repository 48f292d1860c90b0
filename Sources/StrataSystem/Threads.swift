import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A thread of its own running one closure, to be joined once: the one place Strata starts a
/// pthread.
///
/// For work that blocks in the kernel (a decompressor feeding a pipe, a writer finishing files)
/// and must not take a thread of Swift's cooperative pool.
public struct JoinableThread: @unchecked Sendable {
    private let thread: pthread_t

    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread.
    ///
    /// The corresponding C function is `pthread_create`.
    public static func start(_ body: @escaping () -> Void) throws(Errno) -> JoinableThread {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Start(body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        guard status == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw Errno(rawValue: status)
        }
        return JoinableThread(thread: thread)
    }

    /// Waits until the thread's closure has returned.
    ///
    /// The corresponding C function is `pthread_join`.
    public func join() {
        pthread_join(thread, nil)
    }
}

/// Runs `body` on `count` threads, the calling thread among them, and returns when all are
/// done. A thread that cannot be started is left out: `body` should take its work from shared
/// queues, never have it assigned in advance, so that the others do its share.
///
/// The corresponding C functions are `pthread_create` and `pthread_join`.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable () -> Void) {
    var threads: [JoinableThread] = []
    for _ in 1..<max(1, count) {
        if let thread = try? JoinableThread.start(body) { threads.append(thread) }
    }
    body()
    for thread in threads { thread.join() }
}
