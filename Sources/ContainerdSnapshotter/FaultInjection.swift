#if canImport(Glibc)
import Glibc
#endif

/// Crash points for the fault tests: when `STRATA_SNAPSHOTTER_KILL_AT` names a point (for
/// example `prepare-after-layer`), the process sends itself SIGKILL there, as `kill -9` at that
/// moment would. Unset (always, outside the tests), a point does nothing.
enum FaultInjection {
    static let target: String? = getenv("STRATA_SNAPSHOTTER_KILL_AT").map { String(cString: $0) }

    /// Dies here when the environment names this point.
    static func point(_ name: StaticString) {
        guard let target, target == "\(name)" else { return }
        kill(getpid(), SIGKILL)
    }
}
