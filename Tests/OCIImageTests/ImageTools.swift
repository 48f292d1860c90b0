import Foundation

/// Runs podman, skopeo and umoci the way a user would, but on a private store: a root, run root,
/// storage.conf, tmp dir and network config dir under `directory`, in a mount namespace of their
/// own where /var/lib/containers (the blob-info cache) is a fresh tmpfs. Nothing on the host is
/// read or written but the files the test hands them.
struct ImageTools {
    let directory: String

    static var available: Bool {
        ["/usr/bin/podman", "/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/unshare"].allSatisfy {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    init(directory: String) throws {
        self.directory = directory
        for sub in ["root", "run", "tmp", "net"] {
            try FileManager.default.createDirectory(atPath: directory + "/" + sub, withIntermediateDirectories: true)
        }
        try """
            [storage]
            driver = "vfs"
            graphroot = "\(directory)/root"
            runroot = "\(directory)/run"
            """.write(toFile: directory + "/storage.conf", atomically: true, encoding: .utf8)
    }

    /// `podman …` with the private store.
    var podman: String {
        "podman --root \(directory)/root --runroot \(directory)/run --storage-driver vfs --cgroup-manager cgroupfs "
            + "--events-backend none --tmpdir \(directory)/tmp --network-config-dir \(directory)/net"
    }

    /// Runs `script` (sh, `set -e`) with `$PODMAN` set, in the private namespace.
    @discardableResult
    func run(_ script: String) throws -> String {
        let wrapped = """
            set -e
            if [ -d /var/lib/containers ]; then mount -t tmpfs tmpfs /var/lib/containers; else mount -t tmpfs tmpfs /var/lib; fi
            export CONTAINERS_STORAGE_CONF=\(directory)/storage.conf TMPDIR=\(directory)/tmp
            PODMAN="\(podman)"
            \(script)
            """
        try wrapped.write(toFile: directory + "/script.sh", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "sh", directory + "/script.sh"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ToolFailure(script: script, output: output) }
        return output
    }

    struct ToolFailure: Error, CustomStringConvertible {
        var script: String
        var output: String
        var description: String { "failed: \(script)\n\(output)" }
    }

    /// Writes a root filesystem tarball with GNU tar from `files` (path → contents).
    static func rootfs(_ files: [String: String], at path: String) throws {
        let tree = path + ".d"
        defer { try? FileManager.default.removeItem(atPath: tree) }
        for (name, content) in files {
            let url = URL(fileURLWithPath: tree + "/" + name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
        try shell("tar --sort=name --owner=0 --group=0 --numeric-owner -C \(tree) -cf \(path) .")
    }
}
