#if canImport(Glibc)
import Glibc
#endif

/// A mutex with condition variables to wait on under it, allocated so that their addresses never
/// move (Swift does not promise a stored `pthread_mutex_t` stays put; `Mutex` has no condition).
///
/// The conditions are numbered from 0; a bounded queue uses two (not empty, not full), a work
/// pool one.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let conditionCount: Int

    /// Makes a lock with `conditions` condition variables.
    ///
    /// The corresponding C functions are `pthread_mutex_init` and `pthread_cond_init`.
    public init(conditions: Int = 1) {
        precondition(conditions >= 1, "a condition lock has at least one condition")
        conditionCount = conditions
        self.conditions = .allocate(capacity: conditions)
        pthread_mutex_init(mutex, nil)
        for index in 0..<conditions { pthread_cond_init(self.conditions + index, nil) }
    }

    deinit {
        for index in 0..<conditionCount { pthread_cond_destroy(conditions + index) }
        pthread_mutex_destroy(mutex)
        conditions.deallocate()
        mutex.deallocate()
    }

    /// Takes the lock. The corresponding C function is `pthread_mutex_lock`.
    public func lock() { pthread_mutex_lock(mutex) }

    /// Releases the lock. The corresponding C function is `pthread_mutex_unlock`.
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` holding the lock.
    public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits until `condition` is signalled, releasing the lock meanwhile; the lock must be held.
    /// Wakeups may be spurious: wait in a loop on the state it guards.
    ///
    /// The corresponding C function is `pthread_cond_wait`.
    public func wait(_ condition: Int = 0) {
        pthread_cond_wait(conditions + checked(condition), mutex)
    }

    /// Wakes one waiter on `condition`. The corresponding C function is `pthread_cond_signal`.
    public func signal(_ condition: Int = 0) {
        pthread_cond_signal(conditions + checked(condition))
    }

    /// Wakes every waiter on `condition`. The corresponding C function is `pthread_cond_broadcast`.
    public func broadcast(_ condition: Int = 0) {
        pthread_cond_broadcast(conditions + checked(condition))
    }

    private func checked(_ condition: Int) -> Int {
        precondition(condition >= 0 && condition < conditionCount, "no condition \(condition)")
        return condition
    }
}
