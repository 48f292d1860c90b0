#if canImport(Glibc)
import Glibc
#endif

/// Progress lines for long operations: shown on stderr only when it is a terminal, so scripts
/// and pipes see nothing but the command's result.
final class Progress {
    private let label: String
    private let enabled: Bool
    private var shown = false

    init(label: String) {
        self.label = label
        enabled = isatty(2) != 0
    }

    /// Replaces the progress line with `text`.
    func note(_ text: String) {
        guard enabled else { return }
        writeError("\r\u{1B}[K\(label): \(text)")
        shown = true
    }

    /// Clears the progress line.
    func finish() {
        guard enabled, shown else { return }
        writeError("\r\u{1B}[K")
    }
}
