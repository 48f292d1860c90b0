#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import TestSupport

/// Probes for XFS project quotas, and the scratch XFS the quota tests write on.
///
/// Honest probe: a file system that enforces project quotas is either already mounted (the
/// kernel tier's guest mounts one and names it in `STRATA_KERNEL_TIER_XFS`; any XFS mounted with
/// `prjquota` will do), or the probe makes a small XFS image and mounts it with `-o loop,prjquota`.
/// A kernel without `CONFIG_XFS_QUOTA` refuses that mount, and the reason is the mount's message.
public enum XFSProjectQuota {
    public static var availability: FeatureAvailability { probe.availability }

    /// The mount point of an XFS that enforces project quotas, for tests to write on.
    public static func scratchMount() throws -> String {
        switch probe.availability {
        case .available: return probe.mountPoint!
        case .unavailable(let why): throw FeatureUnavailable(feature: .xfsProjectQuota, reason: why)
        }
    }

    /// A new empty directory on the scratch XFS, writable by everyone; remove it when done.
    public static func makeScratchDirectory(_ label: String = "strata-test") throws -> String {
        let mount = try scratchMount()
        do {
            return try TestSupport.makeScratchDirectory(label, in: mount)
        } catch {
            throw FeatureUnavailable(feature: .xfsProjectQuota, reason: "mkdtemp \(mount)/\(label)-XXXXXX: \(error)")
        }
    }

    /// Whether a mount enforces project quotas (`prjquota`/`pquota`, not `pqnoenforce`).
    public static func enforcesProjectQuota(_ mount: MountEntry) -> Bool {
        mount.fileSystemType == "xfs"
            && (mount.hasOption("prjquota") || mount.hasOption("pquota"))
            && !mount.hasOption("pqnoenforce")
    }

    // MARK: probing

    private struct Probe: Sendable {
        var availability: FeatureAvailability
        var mountPoint: String?
    }

    private static let probe: Probe = runProbe()

    private static func runProbe() -> Probe {
        let mounts = MountTable.current()
        let named = ProcessInfo.processInfo.environment[KernelTier.xfsScratchVariable]
        if let named, let mount = mounts.last(where: { $0.mountPoint == named }) {
            if enforcesProjectQuota(mount) {
                return Probe(availability: .available("\(named), named by \(KernelTier.xfsScratchVariable)"),
                             mountPoint: named)
            }
            return Probe(availability: .unavailable(
                "\(KernelTier.xfsScratchVariable)=\(named) is not an XFS mounted with prjquota"))
        }
        if let mount = mounts.last(where: enforcesProjectQuota), access(mount.mountPoint, W_OK) == 0 {
            return Probe(availability: .available("\(mount.mountPoint) is mounted with prjquota"),
                         mountPoint: mount.mountPoint)
        }
        return loopProbe()
    }

    /// Makes a 320 MiB sparse XFS image (mkfs.xfs refuses less than 300 MB) and mounts it with
    /// `loop,prjquota`. On success the mount stays for this process's tests and goes at exit.
    private static func loopProbe() -> Probe {
        guard Host.isRoot else {
            return Probe(availability: .unavailable("no XFS mounted with prjquota, and probing for one needs root"))
        }
        guard let mkfs = Host.executable("mkfs.xfs"), let mountTool = Host.executable("mount") else {
            return Probe(availability: .unavailable("no XFS mounted with prjquota, and mkfs.xfs is not installed"))
        }
        let dir: String
        do {
            dir = try TestSupport.makeScratchDirectory("strata-xfs-probe", in: temporaryBase)
        } catch {
            return Probe(availability: .unavailable("mkdtemp \(temporaryBase)/strata-xfs-probe-XXXXXX: \(error)"))
        }
        let image = dir + "/xfs.img", mountPoint = dir + "/mnt"
        func fail(_ why: String) -> Probe {
            _ = try? Host.run(Host.executable("rm") ?? "/bin/rm", ["-rf", dir])
            return Probe(availability: .unavailable(why))
        }
        let fd = open(image, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0, ftruncate(fd, 320 << 20) == 0 else {
            if fd >= 0 { close(fd) }
            return fail("cannot make an image for an XFS probe in \(dir)")
        }
        close(fd)
        mkdir(mountPoint, 0o755)
        do {
            let made = try Host.run(mkfs, ["-q", "-f", image])
            guard made.status == 0 else { return fail("mkfs.xfs failed: \(trimmed(made.output))") }
            let mounted = try Host.run(mountTool, ["-t", "xfs", "-o", "loop,prjquota", image, mountPoint])
            guard mounted.status == 0 else {
                // XFS registers /proc/fs/xfs/xqmstat only when built with quota support; the
                // mount's own message is generic (the kernel's goes to its log).
                let why = access("/proc/fs/xfs/xqmstat", F_OK) != 0
                    ? "this kernel's XFS has no quota support (CONFIG_XFS_QUOTA; no /proc/fs/xfs/xqmstat)"
                    : "this kernel refuses an XFS mount with prjquota"
                return fail("\(why): \(trimmed(mounted.output))")
            }
        } catch {
            return fail("cannot run the XFS probe: \(error)")
        }
        ProbeCleanup.loopDirectory = dir
        atexit {
            guard let dir = ProbeCleanup.loopDirectory else { return }
            _ = try? Host.run(Host.executable("umount") ?? "/bin/umount", [dir + "/mnt"])
            _ = try? Host.run(Host.executable("rm") ?? "/bin/rm", ["-rf", dir])
        }
        return Probe(availability: .available("a loop-mounted XFS with prjquota at \(mountPoint)"),
                     mountPoint: mountPoint)
    }

    private static func trimmed(_ text: String) -> String {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
    }
}

private enum ProbeCleanup {
    nonisolated(unsafe) static var loopDirectory: String?
}

/// Thrown by helpers that need a feature this machine lacks.
public struct FeatureUnavailable: Error, CustomStringConvertible {
    public var feature: KernelFeature
    public var reason: String
    public var description: String { "\(feature) unavailable: \(reason)" }
}
