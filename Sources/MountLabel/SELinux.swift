import CSELinux
import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What libselinux says about this host and its files.
public enum SELinux {
    /// Whether SELinux is enabled (a policy is loaded and selinuxfs is mounted); `false` on a
    /// host without libselinux. libselinux is loaded by the first call (see CSELinux).
    ///
    /// The corresponding C function is `is_selinux_enabled`.
    public static var isEnabled: Bool { strata_selinux_load(nil, 0) == 1 && is_selinux_enabled() == 1 }

    /// Whether the loaded policy accepts `context` as a valid security context.
    ///
    /// The corresponding C function is `security_check_context`.
    public static func isValid(_ context: SELinuxContext) -> Bool {
        security_check_context(context.rawValue) == 0
    }

    /// The label of `path` (of a symlink itself), or `nil` when it has none.
    ///
    /// The corresponding C function is `lgetfilecon`.
    public static func label(of path: FilePath) throws(StorageError) -> SELinuxContext? {
        var raw: UnsafeMutablePointer<CChar>?
        let status = path.withPlatformString { lgetfilecon($0, &raw) }
        if status < 0 {
            let code = Errno(rawValue: errno)
            if code == .noData || code == .notSupported { return nil }
            throw StorageError("read SELinux label", path: path.string, errno: code)
        }
        guard let raw else { return nil }
        defer { freecon(raw) }
        return try SELinuxContext(String(cString: raw))
    }

    /// Sets the label of `path` (of a symlink itself).
    ///
    /// The corresponding C function is `lsetfilecon`.
    public static func setLabel(_ label: SELinuxContext, of path: FilePath) throws(StorageError) {
        let status = path.withPlatformString { lsetfilecon($0, label.rawValue) }
        if status < 0 {
            throw StorageError("set SELinux label", path: path.string, errno: Errno(rawValue: errno))
        }
    }
}

extension SELinuxContext {
    /// The same context with its MCS categories dropped (`…:s0:c1,c2` → `…:s0`): a label every
    /// container may share.
    public var sharedVariant: SELinuxContext {
        let parts = rawValue.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 4 else { return self }
        let level = parts[3]
        return (try? SELinuxContext(parts.prefix(3).joined(separator: ":") + ":" + level)) ?? self
    }
}
