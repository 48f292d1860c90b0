import ContainerdSnapshotter
import Foundation
import TestTiers
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where the kernel-tier containerd tests put their snapshotter and containerd: the tier's scratch
/// XFS inside the guest (the guest's `/var/tmp` is on overlayfs, which refuses to be an upper
/// directory's file system), `/var/tmp` elsewhere.
private var tierScratchBase: String {
    ProcessInfo.processInfo.environment[KernelTier.xfsScratchVariable] ?? "/var/tmp"
}

/// A private containerd on strata-snapshotter with the busybox image imported, for one test.
private struct Engine {
    let scratch: Scratch
    let snapshotter: SnapshotterProcess
    let containerd: PrivateContainerd

    init(_ name: String, in base: String, snapshotterConfig: String = "") throws {
        scratch = Scratch(name, in: base)
        snapshotter = try SnapshotterProcess(in: scratch, configText: snapshotterConfig)
        try snapshotter.start()
        containerd = try PrivateContainerd(in: scratch, snapshotterSocket: snapshotter.socket)
        try containerd.start()
        let archive = try makeBusyboxArchive(in: scratch)
        let imported = try containerd.ctr(["images", "import", "--snapshotter", "strata", "--base-name", "localhost/strata-busybox", archive])
        guard imported.status == 0 else {
            throw SnapshotterTestError("ctr images import: \(imported.stdout) \(imported.stderr)\n\(snapshotter.logText)")
        }
    }

    /// `ctr run --snapshotter strata --rm` of `script` in the image, with snapshot labels.
    func runContainer(_ id: String, labels: [String: String] = [:], _ script: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let labelArguments = labels.sorted { $0.key < $1.key }.flatMap { ["--snapshotter-label", "\($0.key)=\($0.value)"] }
        return try containerd.ctr(["run", "--snapshotter", "strata", "--fifo-dir", containerd.fifoDirectory, "--rm"] + labelArguments
                                  + [ContainerdTests.image, id, "/bin/busybox", "sh", "-c", script])
    }

    func stop() {
        containerd.stop()
        snapshotter.stop()
    }
}

/// What a container printed after `dd` of `count` MiB to /big: dd's messages, its status, the
/// size of /big.
private struct WriteOutcome {
    let output: String
    init(_ output: String) { self.output = output }
    var ddStatus: Int? { value(after: "dd status ") }
    var size: Int? { value(after: "size ") }
    private func value(after prefix: String) -> Int? {
        output.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
    }
    /// The container's shell script. It waits a second before it exits: when the task exits,
    /// ctr's `Task.Delete` closes and cancels its copy of the container's output at once, so
    /// the last lines of a process that exits right after writing them can be lost (seen once
    /// in CI: dd's lines arrived, the two after them did not).
    static func script(mebibytes count: Int) -> String {
        "dd if=/dev/zero of=/big bs=1M count=\(count) 2>&1; echo \"dd status $?\"; busybox stat -c 'size %s' /big; sleep 1"
    }
}

@Suite("containerd runs containers on strata-snapshotter in the kernel tier: size limits and SELinux labels", .serialized,
       .enabled(if: runningAsRoot, "containerd and overlay mounts need root"),
       .enabled(if: containerdInstalled, "needs Debian's containerd, runc, umoci and busybox-static (make deps installs them)"))
struct ContainerdKernelTierTests {
    static let megabyte = 1 << 20

    @Test("ctr run with a size limit (the config's default, or ctr's --snapshotter-label strata.size over it): dd stops with ENOSPC at the limit, a smaller write passes",
          .kernelTier(.xfsProjectQuota))
    func sizeLimit() throws {
        let engine = try Engine("ctr-quota", in: try XFSProjectQuota.scratchMount(), snapshotterConfig: "size = \"8M\"\n")
        defer { engine.stop() }

        // The configured default, 8 MiB: a 16 MiB write stops at the limit.
        let stopped = try engine.runContainer("strata-quota-1", WriteOutcome.script(mebibytes: 16))
        #expect(stopped.status == 0, "\(stopped.stderr)\n\(engine.snapshotter.logText)")
        let full = WriteOutcome(stopped.stdout)
        #expect(full.output.contains("No space left on device"), "\(full.output)")
        #expect(full.ddStatus.map { $0 != 0 } == true, "\(full.output)")
        #expect(full.size.map { $0 > 4 * Self.megabyte && $0 <= 8 * Self.megabyte } == true, "\(full.output)")

        // Under the default limit: a 4 MiB write passes whole.
        let small = WriteOutcome(try engine.runContainer("strata-quota-2", WriteOutcome.script(mebibytes: 4)).stdout)
        #expect(small.ddStatus == 0, "\(small.output)")
        #expect(small.size == 4 * Self.megabyte, "\(small.output)")

        // A label of its own overrides the default: 12 MiB stops a 16 MiB write later.
        let lowered = WriteOutcome(try engine.runContainer("strata-quota-3", labels: [SnapshotLabels.size: "12M"],
                                                           WriteOutcome.script(mebibytes: 16)).stdout)
        #expect(lowered.output.contains("No space left on device"), "\(lowered.output)")
        #expect(lowered.size.map { $0 > 8 * Self.megabyte && $0 <= 12 * Self.megabyte } == true, "\(lowered.output)")
    }

    @Test("ctr run with --snapshotter-label strata.mount-label: the container's files, the image's and its own, carry that context; without it they do not",
          .kernelTier(.selinux))
    func mountLabel() throws {
        let context = "system_u:object_r:container_file_t:s0:c1,c2"
        #expect(SELinux.isValid(context: context), "the tier's policy accepts \(context)")
        let engine = try Engine("ctr-label", in: tierScratchBase)
        defer { engine.stop() }

        let labelled = try labels(in: engine, id: "strata-label-1", labels: [SnapshotLabels.mountLabel: context])
        #expect(labelled == ["/bin/busybox": context, "/written": context])

        let plain = try labels(in: engine, id: "strata-label-2", labels: [:])
        #expect(plain.count == 2 && plain.values.allSatisfy { $0 != context }, "\(plain)")
    }

    /// Starts a container (`ctr run -d`) that writes /written and waits; reads the SELinux labels
    /// of its /bin/busybox (from the image) and /written (its own) on the rootfs containerd
    /// mounted; then removes the container and its snapshot.
    private func labels(in engine: Engine, id: String, labels: [String: String]) throws -> [String: String] {
        let labelArguments = labels.flatMap { ["--snapshotter-label", "\($0.key)=\($0.value)"] }
        let started = try engine.containerd.ctr(["run", "-d", "--snapshotter", "strata"] + labelArguments
                                                + [ContainerdTests.image, id, "/bin/busybox", "sh", "-c", "echo hi > /written; exec sleep 120"])
        guard started.status == 0 else {
            throw SnapshotterTestError("ctr run -d: \(started.stdout) \(started.stderr)\n\(engine.snapshotter.logText)")
        }
        defer {
            _ = try? engine.containerd.ctr(["tasks", "rm", "-f", id])
            _ = try? engine.containerd.ctr(["containers", "rm", id])
        }
        let rootfs = engine.containerd.directory + "/state/io.containerd.runtime.v2.task/strata-test/\(id)/rootfs"
        let deadline = Date().addingTimeInterval(30)
        while access(rootfs + "/written", F_OK) != 0 && Date() < deadline { usleep(50_000) }
        var found: [String: String] = [:]
        for file in ["/bin/busybox", "/written"] {
            found[file] = try SELinux.label(ofPath: rootfs + file)
        }
        return found
    }
}
