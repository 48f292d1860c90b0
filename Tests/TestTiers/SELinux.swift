#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import CAttr

/// Honest SELinux probes, read from the kernel's own interfaces (no libselinux needed).
public enum SELinux {
    public static let selinuxfs = "/sys/fs/selinux"

    /// SELinux is enabled when selinuxfs is mounted (its `enforce` file exists), as libselinux's
    /// `is_selinux_enabled` decides; labels mean something only once a policy is loaded, which
    /// turns this process's context from the bare `kernel` into a full `user:role:type:level`.
    public static var availability: FeatureAvailability {
        guard access(selinuxfs + "/enforce", F_OK) == 0 else {
            return .unavailable("SELinux is not enabled on this kernel (no \(selinuxfs)/enforce)")
        }
        guard isPolicyLoaded else {
            return .unavailable("SELinux is enabled but no policy is loaded")
        }
        return .available(isEnforcing ? "enforcing" : "permissive")
    }

    public static var isEnabled: Bool { access(selinuxfs + "/enforce", F_OK) == 0 }

    public static var isPolicyLoaded: Bool {
        guard let context = currentContext else { return false }
        return context.contains(":")
    }

    public static var isEnforcing: Bool {
        Host.readFile(selinuxfs + "/enforce")?.trimmingCharacters(in: .whitespacesAndNewlines) == "1"
    }

    /// This process's context (`/proc/self/attr/current`), without the trailing NUL.
    public static var currentContext: String? {
        Host.readFile("/proc/self/attr/current").map(trimmingNULs)
    }

    /// Whether the loaded policy accepts `context` (writes it to selinuxfs's `context` node, as
    /// `security_check_context` does).
    public static func isValid(context: String) -> Bool {
        let fd = open(selinuxfs + "/context", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let bytes = Array(context.utf8) + [0]
        return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// The label of a file, from its `security.selinux` extended attribute (not following a final
    /// symbolic link).
    public static func label(ofPath path: String) throws -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { lgetxattr(path, "security.selinux", $0.baseAddress, $0.count) }
        guard count >= 0 else {
            let code = errno
            throw LabelReadError(path: path, reason: Host.errnoDescription(code), errno: code)
        }
        return trimmingNULs(String(decoding: buffer[..<count], as: UTF8.self))
    }

    static func trimmingNULs(_ text: String) -> String {
        var text = text
        while text.last == "\0" || text.last == "\n" { text.removeLast() }
        return text
    }
}

public struct LabelReadError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var errno: Int32
    public var description: String { "cannot read security.selinux of \(path): \(reason)" }
}
