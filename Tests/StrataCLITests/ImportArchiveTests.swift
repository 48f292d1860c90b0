import Foundation
import Testing

/// `strata import` of what `podman save` writes, as the new user tried it.
@Suite("strata import of archives")
struct ImportArchiveTests {
    static var toolsPresent: Bool {
        ["/usr/bin/podman", "/usr/bin/unshare"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `strata` in `directory` (so that relative references resolve there).
    func strataIn(_ directory: String, _ store: Store, _ args: [String]) throws -> CLIResult {
        try capture(strataBinary(), args + store.globals, in: directory)
    }

    @Test("podman save's docker-archive, oci-archive and oci-dir import; a corrupt archive changes nothing",
          .enabled(if: getuid() == 0, "needs root (overlay mounts, a private mount namespace for podman)"),
          .enabled(if: toolsPresent, "needs podman and unshare (make test installs them)"))
    func podmanSave() throws {
        let store = Store()
        let dir = store.root + "/work"
        // podman on a private store, in a mount namespace where its blob-info cache is a tmpfs.
        let script = """
            set -e
            if [ -d /var/lib/containers ]; then mount -t tmpfs tmpfs /var/lib/containers; else mount -t tmpfs tmpfs /var/lib; fi
            mkdir -p \(dir)/rootfs/etc \(dir)/p/root \(dir)/p/run \(dir)/p/tmp \(dir)/p/net && cd \(dir)
            printf '[storage]\\ndriver = "vfs"\\ngraphroot = "%s"\\nrunroot = "%s"\\n' \(dir)/p/root \(dir)/p/run > p/storage.conf
            export CONTAINERS_STORAGE_CONF=\(dir)/p/storage.conf TMPDIR=\(dir)/p/tmp
            P="podman --root \(dir)/p/root --runroot \(dir)/p/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --tmpdir \(dir)/p/tmp --network-config-dir \(dir)/p/net"
            echo minbase > rootfs/etc/marker
            tar -C rootfs -cf rootfs.tar .
            $P import rootfs.tar localhost/minbase:1 >/dev/null
            $P save --format oci-archive -o img-oci.tar localhost/minbase:1 >/dev/null
            $P save -o img-docker.tar localhost/minbase:1 >/dev/null
            $P save --format oci-dir -o oci localhost/minbase:1 >/dev/null
            echo second > rootfs/etc/marker
            tar -C rootfs -cf rootfs2.tar .
            $P import rootfs2.tar localhost/second:1 >/dev/null
            $P save -o second.tar localhost/second:1 >/dev/null
            """
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try script.write(toFile: dir + ".sh", atomically: true, encoding: .utf8)
        let made = try runProgram("/usr/bin/unshare", ["--mount", "--propagation", "private", "sh", dir + ".sh"])
        try #require(made.status == 0, "\(made.output)")

        let first = try strataIn(dir, store, ["import", "img-oci.tar"])
        #expect(first.status == 0, "\(first.stderr)")
        let top = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(top.count == 64)
        for reference in ["img-docker.tar", "oci:localhost/minbase:1", "docker-archive:img-docker.tar:localhost/minbase:1",
                          "oci-archive:img-oci.tar", "oci:oci:localhost/minbase:1"] {
            let again = try strataIn(dir, store, ["import", reference])
            #expect(again.status == 0 && again.stdout == first.stdout, "\(reference): \(again.stderr)")
        }
        #expect(try strata(store, ["create-layer", "ctr", "--parent", top, "--rw"]).status == 0)
        let merged = try strata(store, ["mount", "ctr"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(contentsOfFile: merged + "/etc/marker", encoding: .utf8) == "minbase\n")
        #expect(try strata(store, ["unmount", "ctr"]).status == 0)

        // On a terminal (script(1) gives it one), the layers are reported as they are applied.
        let fresh = Store()
        let onTerminal = try runProgram("/usr/bin/script", ["-qec", ([strataBinary(), "import", dir + "/img-docker.tar"] + fresh.globals).joined(separator: " "), "/dev/null"])
        #expect(onTerminal.status == 0, "\(onTerminal.output)")
        #expect(onTerminal.output.contains("import: applied \(top.prefix(12))"), "\(onTerminal.output)")
        #expect(first.stderr.isEmpty, "progress is for terminals only")

        let wrongTag = try strataIn(dir, store, ["import", "docker-archive:img-docker.tar:localhost/other:2"])
        #expect(wrongTag.status == 1)
        #expect(wrongTag.stderr.contains("no image tagged 'localhost/other:2' (tags: localhost/minbase:1)"), "\(wrongTag.stderr)")
        #expect(wrongTag.stderr.split(separator: "\n").count == 1)

        // Another image (its layers not in the store yet, so they are read) with damaged layer
        // bytes, and cut short.
        let layersBefore = try strata(store, ["layers"]).stdout
        try runProgram("/bin/sh", ["-c", """
            set -e
            cd \(dir)
            python3 -c 'import sys; d = open("second.tar", "rb").read(); open("bad.tar", "wb").write(d.replace(b"second\\n", b"secXnd\\n"))'
            head -c 3000 second.tar > cut.tar
            """])
        let bad = try strataIn(dir, store, ["import", "bad.tar"])
        #expect(bad.status == 1 && bad.stderr.contains("digest is sha256:"), "\(bad.stderr)")
        let cut = try strataIn(dir, store, ["import", "cut.tar"])
        #expect(cut.status == 1 && cut.stderr.contains("truncated"), "\(cut.stderr)")
        #expect(try strata(store, ["layers"]).stdout == layersBefore)
    }
}
