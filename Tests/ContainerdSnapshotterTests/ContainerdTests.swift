import ContainerdSnapshotter
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("containerd 1.6 runs containers on strata-snapshotter", .serialized,
       .enabled(if: runningAsRoot, "containerd and overlay mounts need root"),
       .enabled(if: containerdInstalled, "needs Debian's containerd, runc, umoci and busybox-static (make deps installs them)"))
struct ContainerdTests {
    static let image = "localhost/strata-busybox:latest"

    func setUp(_ scratch: Scratch) throws -> (SnapshotterProcess, PrivateContainerd) {
        let snapshotter = try SnapshotterProcess(in: scratch)
        try snapshotter.start()
        let containerd = try PrivateContainerd(in: scratch, snapshotterSocket: snapshotter.socket)
        try containerd.start()
        let archive = try makeBusyboxArchive(in: scratch)
        let imported = try containerd.ctr(["images", "import", "--snapshotter", "strata", "--base-name", "localhost/strata-busybox", archive])
        guard imported.status == 0 else {
            throw SnapshotterTestError("ctr images import: \(imported.stdout) \(imported.stderr)\n\(snapshotter.logText)")
        }
        return (snapshotter, containerd)
    }

    @Test("ctr images import --snapshotter strata, then ctr run --rm prints what the container wrote")
    func runContainer() throws {
        let scratch = Scratch("ctr")
        let (snapshotter, containerd) = try setUp(scratch)
        let ran = try containerd.ctr(["run", "--snapshotter", "strata", "--fifo-dir", containerd.fifoDirectory, "--rm", Self.image, "strata-run-1",
                                      "/bin/busybox", "sh", "-c", "echo hi > /x; cat /x"])
        #expect(ran.status == 0, "\(ran.stderr)\n\(snapshotter.logText)")
        #expect(ran.stdout == "hi\n")
        // The image's layer is a committed snapshot of strata's; the container's is gone with --rm.
        let listed = try containerd.ctr(["snapshots", "--snapshotter", "strata", "ls"])
        #expect(listed.status == 0)
        #expect(listed.stdout.contains("Committed"))
        #expect(!listed.stdout.contains("strata-run-1"))
        containerd.stop()
        snapshotter.stop()
        let check = try run(builtProgram("strata"), ["check", "--root", snapshotter.root, "--run-root", snapshotter.runRoot])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    @Test("ctr run --remap-labels: the container runs in a user namespace on idmapped lowers, its files owned by the mapped IDs")
    func userNamespace() throws {
        let scratch = Scratch("ctr")
        let (snapshotter, containerd) = try setUp(scratch)
        let ran = try containerd.ctr(["run", "--snapshotter", "strata", "--fifo-dir", containerd.fifoDirectory, "--rm",
                                      "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536", "--remap-labels",
                                      Self.image, "strata-userns-1",
                                      "/bin/busybox", "sh", "-c", "echo hi > /x; cat /x; busybox stat -c '%u' /bin/busybox; cat /proc/self/uid_map"])
        #expect(ran.status == 0, "\(ran.stderr)\n\(snapshotter.logText)")
        let lines = ran.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.first == "hi")
        #expect(lines.count >= 3 && lines[1] == "0", "the image's root-owned files look root-owned inside: \(ran.stdout)")
        #expect(lines.count >= 3 && lines[2].split(separator: " ").map(String.init) == ["0", "200000", "65536"], "\(ran.stdout)")
    }
}
