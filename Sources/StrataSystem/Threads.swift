#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on `count` threads, the calling thread among them, and returns when all are
/// done. A thread that cannot be started is left out: `body` should take its work from shared
/// queues, never have it assigned in advance, so that the others do its share.
///
/// The corresponding C functions are `pthread_create` and `pthread_join`.
public func runOnThreads(_ count: Int, _ body: @escaping @Sendable () -> Void) {
    final class Start: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var threads: [pthread_t] = []
    for _ in 1..<max(1, count) {
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Start(body)).toOpaque()
        let status = pthread_create(&thread, nil, { raw in
            Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        if status == 0 {
            threads.append(thread)
        } else {
            Unmanaged<Start>.fromOpaque(context).release()
        }
    }
    body()
    for thread in threads { pthread_join(thread, nil) }
}
