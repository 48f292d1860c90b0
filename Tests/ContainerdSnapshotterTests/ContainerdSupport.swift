import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Whether Debian's containerd, ctr, runc and umoci are installed (the Makefile installs them).
let containerdInstalled = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/bin/umoci", "/bin/busybox"]
    .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

/// A containerd of its own: private config, root, state and sockets in a scratch directory,
/// with `strata` as a proxy snapshotter at `snapshotterSocket`. (containerd 1.6 still names its
/// shims' sockets under /run/containerd/s by a hash of this instance's address; nothing else of
/// the host's is used.)
final class PrivateContainerd: @unchecked Sendable {
    let address: String
    let directory: String
    let fifoDirectory: String
    private var process: Process?
    let log: String
    let configPath: String

    init(in scratch: Scratch, snapshotterSocket: String) throws {
        directory = scratch.sub("containerd")
        address = directory + "/containerd.sock"
        fifoDirectory = directory + "/fifo"
        log = directory + "/containerd.log"
        configPath = directory + "/config.toml"
        try FileManager.default.createDirectory(atPath: fifoDirectory, withIntermediateDirectories: true)
        let config = """
            version = 2
            root = "\(directory)/root"
            state = "\(directory)/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
            [grpc]
              address = "\(address)"
            [ttrpc]
              address = "\(address).ttrpc"
            [debug]
              address = "\(address).debug"
            [metrics]
              address = ""
            [proxy_plugins]
              [proxy_plugins.strata]
                type = "snapshot"
                address = "\(snapshotterSocket)"
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/containerd")
        process.arguments = ["--config", configPath]
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        guard waitForSocket(address) else { throw SnapshotterTestError("containerd did not start: \(logText)") }
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    /// Runs `ctr` against this containerd in namespace `strata-test`.
    @discardableResult
    func ctr(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try run("/usr/bin/ctr", ["--address", address, "--namespace", "strata-test"] + arguments)
    }
}

/// An OCI archive of one layer holding Debian's static busybox as /bin/busybox and /bin/sh,
/// made locally with umoci (no network). Its image is `localhost/strata-busybox:latest` once
/// imported with `--base-name localhost/strata-busybox`.
func makeBusyboxArchive(in scratch: Scratch) throws -> String {
    let work = scratch.sub("image")
    let archive = scratch.sub("busybox-oci.tar")
    let script = """
        set -e
        umoci init --layout \(work)/oci
        umoci new --image \(work)/oci:latest
        umoci unpack --image \(work)/oci:latest \(work)/bundle
        mkdir -p \(work)/bundle/rootfs/bin \(work)/bundle/rootfs/tmp
        cp /bin/busybox \(work)/bundle/rootfs/bin/busybox
        ln -s busybox \(work)/bundle/rootfs/bin/sh
        umoci repack --image \(work)/oci:latest \(work)/bundle
        umoci config --image \(work)/oci:latest --config.cmd /bin/sh --os linux --architecture amd64
        umoci gc --layout \(work)/oci
        tar -C \(work)/oci -cf \(archive) .
        """
    let result = try run("/bin/sh", ["-c", script])
    guard result.status == 0 else { throw SnapshotterTestError("building the busybox image: \(result.stderr)") }
    return archive
}
