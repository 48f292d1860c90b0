import CArchive
import GraphDriver

/// libarchive is loaded when a tar is first read or written (see CArchive), not when the
/// process starts; this turns a missing library into an error instead of an abort.
enum LibArchive {
    /// Loads libarchive once; throws, naming `operation`, when it cannot be loaded.
    static func load(for operation: String) throws(StorageError) {
        var message = [CChar](repeating: 0, count: 512)
        if strata_archive_load(&message, message.count) == 1 { return }
        let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw StorageError(.unsupported, operation,
                           reason: "cannot load libarchive (Debian package libarchive13): \(reason)")
    }
}
