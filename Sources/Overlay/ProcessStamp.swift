import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A process named so that a reused pid does not pass for it: `<pid> <start time>`, the start
/// time being field 22 of `/proc/<pid>/stat`.
///
/// Markers that say which process owns something until it is done (a layer created
/// incomplete, a remap in flight) hold a stamp; whoever finds the marker later asks whether
/// its process still runs.
struct ProcessStamp: Sendable, Hashable, CustomStringConvertible {
    let pid: Int32
    /// The process's start time, in clock ticks since boot, as `/proc` gives it.
    let startTime: String

    /// This process.
    static var current: ProcessStamp {
        let pid = getpid()
        return ProcessStamp(pid: pid, startTime: startTime(of: pid) ?? "0")
    }

    private init(pid: Int32, startTime: String) {
        self.pid = pid
        self.startTime = startTime
    }

    /// Reads a stamp as `description` writes it (a trailing newline allowed); `nil` when the
    /// text is not one.
    init?(_ text: some StringProtocol) {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let pid = Int32(parts[0]) else { return nil }
        var startTime = String(parts[1])
        if startTime.hasSuffix("\n") { startTime.removeLast() }
        self.init(pid: pid, startTime: startTime)
    }

    /// `<pid> <start time>`.
    var description: String { "\(pid) \(startTime)" }

    /// Whether the stamped process still runs: its pid exists and started when it says.
    var isAlive: Bool { Self.startTime(of: pid) == startTime }

    /// Whether the stamp in `text` names a process that still runs (a text that is no stamp
    /// names none).
    static func isAlive(_ text: some StringProtocol) -> Bool { ProcessStamp(text)?.isAlive ?? false }

    /// Whether a process with this pid exists at all (a bare pid, as in a probe's scratch name).
    static func pidExists(_ pid: Int32) -> Bool { !(kill(pid, 0) != 0 && errno == ESRCH) }

    /// A process's start time (field 22 of `/proc/<pid>/stat`), `nil` when it does not exist.
    private static func startTime(of pid: Int32) -> String? {
        guard let text = try? FileDescriptor.currentWorkingDirectory.readText(at: FilePath("/proc/\(pid)/stat")),
              let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name, which may hold spaces: state is field 3, start time 22.
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
