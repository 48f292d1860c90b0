#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A kernel feature some tests need and not every test machine has.
///
/// Tests that need one carry `.kernelTier(…)`; on a kernel without it they are skipped with the
/// reason, and they run in the kernel tier's guest (`swift package kernel-test`, `make kernel-test`),
/// whose kernel has them all.
public enum KernelFeature: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Project quotas on XFS: a mount with `prjquota`, enforced (`CONFIG_XFS_QUOTA`).
    case xfsProjectQuota
    /// SELinux enabled with a policy loaded (labels such as `context=` mount options work).
    case selinux

    public var description: String {
        switch self {
        case .xfsProjectQuota: "XFS project quotas"
        case .selinux: "SELinux with a loaded policy"
        }
    }

    /// Whether this machine has the feature, and why not when it does not. Probed once per process.
    public var availability: FeatureAvailability {
        switch self {
        case .xfsProjectQuota: XFSProjectQuota.availability
        case .selinux: SELinux.availability
        }
    }

    public var isAvailable: Bool { availability.isAvailable }
}

/// The answer of a feature probe: available, or not with the reason.
public enum FeatureAvailability: Sendable, Equatable, CustomStringConvertible {
    case available(String)
    case unavailable(String)

    public var isAvailable: Bool {
        if case .available = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .available(let how): "available (\(how))"
        case .unavailable(let why): "unavailable: \(why)"
        }
    }
}

/// Facts about the tier the tests run in.
public enum KernelTier {
    /// The environment variable the kernel tier's guest sets to `1`.
    public static let environmentVariable = "STRATA_KERNEL_TIER"
    /// The environment variable naming the guest's scratch XFS (mounted with `prjquota`).
    public static let xfsScratchVariable = "STRATA_KERNEL_TIER_XFS"

    /// True inside the kernel tier's guest. A test there expects every kernel feature; one that is
    /// missing is a broken guest, and fails the test instead of skipping it.
    public static var isGuest: Bool {
        ProcessInfo.processInfo.environment[environmentVariable] == "1"
    }

    /// How to run the kernel tier, for skip messages.
    public static let howToRun = "runs in the kernel tier: `make kernel-test` or `swift package kernel-test`"
}

// MARK: - Small system helpers shared by the probes

enum Host {
    static var isRoot: Bool { geteuid() == 0 }

    /// The first executable named `name` in the usual system directories and PATH.
    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init)
            + ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        for dir in dirs where !dir.isEmpty {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs a program to completion; returns its exit status and its standard output and error.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func readFile(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func errnoDescription(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
