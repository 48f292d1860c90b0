@testable import ContainerdSnapshotter
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import TestTiers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A labeler that says SELinux is on and renders `context="…"` as MountLabel's does, so that
/// the mount specs can be checked on a host without SELinux (the kernel tier mounts for real).
struct LabelingOn: MountLabeler {
    var isEnabled: Bool { true }
    func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption? { try .quoted("context", label.rawValue) }
    func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError) {}
}

@Suite("ContainerdSnapshotter: SELinux labels and quotas", .serialized, .enabled(if: runningAsRoot, "makes a driver home: needs root"))
struct LabelTests {
    @Test("the configured mount label, or a snapshot's own label, goes into its overlay spec as context=")
    func mountLabel() throws {
        let scratch = Scratch()
        let root = FilePath(scratch.sub("root"))
        var configuration = SnapshotterConfiguration(root: root)
        configuration.runRoot = FilePath(scratch.sub("run"))
        configuration.mountLabel = try SELinuxContext("system_u:object_r:container_file_t:s0:c1,c2")
        let driver = try OverlayDriver(home: root.appending("overlay"), runHome: configuration.runRoot.appending("overlay"),
                                       labeler: LabelingOn())
        let sn = try Snapshotter(configuration: configuration, driver: driver)
        _ = try sn.prepare(key: "base-tmp", parent: "", labels: [:])
        try sn.commit(name: "base", key: "base-tmp", labels: [:])
        let specs = try sn.prepare(key: "c", parent: "base", labels: [:])
        #expect(specs[0].type == "overlay")
        #expect(specs[0].options.first == "context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
        let own = try sn.prepare(key: "d", parent: "base", labels: [SnapshotLabels.mountLabel: "system_u:object_r:container_file_t:s0:c7,c8"])
        #expect(own[0].options.first == "context=\"system_u:object_r:container_file_t:s0:c7,c8\"")
        #expect(throws: StorageError.self) {
            _ = try sn.prepare(key: "e", parent: "base", labels: [SnapshotLabels.mountLabel: "not a context"])
        }
    }
}

@Suite("ContainerdSnapshotter: quota labels (kernel tier)", .serialized, .kernelTier(.xfsProjectQuota))
struct QuotaKernelTierTests {
    @Test("a size label limits the container snapshot (ENOSPC through its bind-mount spec); Usage comes from the quota")
    func sizeLabel() throws {
        let home = try XFSProjectQuota.makeScratchDirectory("snapshotter")
        defer {
            for entry in Mounts.mountTable() where entry.mountPoint.hasPrefix(home) {
                try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
            }
            try? FileManager.default.removeItem(atPath: home)
        }
        var configuration = SnapshotterConfiguration(root: FilePath(home + "/root"))
        configuration.runRoot = FilePath(home + "/run")
        let sn = try Snapshotter(configuration: configuration)
        #expect(sn.driver.quota.isSupported)
        let specs = try sn.prepare(key: "c", parent: "", labels: [SnapshotLabels.size: "8M"])
        let target = home + "/mnt"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try mountAll(specs, at: target)
        defer { umount2(target, Int32(MNT_DETACH)) }
        let fd = open(target + "/big", O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        let chunk = [UInt8](repeating: 1, count: 1 << 20)
        var failure: Int32 = 0
        for _ in 0..<16 {
            if chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) < 0 { failure = errno; break }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        #expect(failure == ENOSPC || failure == EDQUOT)
        let usage = try sn.usage(key: "c")
        #expect(usage.bytes > 4 << 20 && usage.bytes <= 8 << 20)
    }
}
