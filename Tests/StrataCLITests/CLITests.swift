import Foundation
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (runProgram, strataBinary, scratch directories).
@_exported import TestSupport
import Testing

/// What a run of the built `strata` binary (beside the test bundle) left.
typealias CLIResult = ProgramResult

/// A store of its own for one test, removed (mounts first) when the test is done with it.
final class Store {
    private let scratch = ScratchDirectory("strata-cli")
    var root: String { scratch.path }
    deinit {
        // Let strata unmount what a failed test left behind; the scratch directory goes next.
        _ = try? strata(self, ["cleanup"])
    }
    var globals: [String] { ["--root", root + "/root", "--run-root", root + "/run"] }
}

@discardableResult
func strata(_ store: Store, _ args: [String], stdin: Data? = nil) throws -> CLIResult {
    try capture(strataBinary(), args + store.globals, input: stdin.map { Array($0) } ?? [])
}

/// Runs a program with its output and errors together; returns its status and that output.
func runProgram(_ path: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func tarOf(_ files: [String: String]) throws -> Data {
    let dir = ScratchDirectory("strata-cli-src")
    for (name, content) in files {
        let url = URL(fileURLWithPath: dir(name))
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try content.write(to: url, atomically: false, encoding: .utf8)
    }
    // Read as bytes: a tar stream is not text.
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/tar")
    process.arguments = ["-C", dir.path, "-cf", "-", "."]
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return data
}

@Suite("strata command line", .serialized)
struct CLITests {
    @Test("status prints the driver's findings as Key: value lines and JSON")
    func status() throws {
        let store = Store()
        let text = try strata(store, ["status"])
        #expect(text.status == 0)
        let keys = text.stdout.split(separator: "\n").map { String($0.split(separator: ":")[0]) }
        #expect(keys == ["Root", "Run Root", "Driver Name", "Driver Options", "Backing Filesystem", "Supports d_type", "Native Overlay Diff", "Using metacopy",
                         "Supports shifting", "Supports volatile"])
        let json = try strata(store, ["status", "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
        #expect(object?["Supports d_type"] == "true")
    }

    @Test("a layer's life: create, apply, mount twice across processes, unmount, diff, remove")
    func lifecycle() throws {
        let store = Store()
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        let applied = try strata(store, ["apply-diff", "base", "-"], stdin: try tarOf(["etc/hostname": "strata\n"]))
        #expect(applied.status == 0)
        #expect(applied.stdout == "7\n")
        #expect(try strata(store, ["create-layer", "app", "--parent", "base", "--rw"]).status == 0)

        let first = try strata(store, ["mount", "app"])
        #expect(first.status == 0)
        let merged = first.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(contentsOfFile: merged + "/etc/hostname", encoding: .utf8) == "strata\n")
        let second = try strata(store, ["mount", "app"])
        #expect(second.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == merged)
        try "new\n".write(toFile: merged + "/added", atomically: false, encoding: .utf8)

        // Two mounts, one unmount: still mounted (the count lives in the run home).
        #expect(try strata(store, ["unmount", "app"]).status == 0)
        #expect(Mounts.isMountPoint(FilePath(merged)))
        #expect(try strata(store, ["unmount", "app"]).status == 0)
        #expect(!Mounts.isMountPoint(FilePath(merged)))

        let changes = try strata(store, ["changes", "app"])
        #expect(changes.stdout == "A /added\n")
        #expect(try strata(store, ["diff-size", "app"]).stdout == "4\n")
        #expect(try strata(store, ["layers"]).stdout == "app\nbase\n")
        #expect(try strata(store, ["exists", "app"]).status == 0)
        #expect(try strata(store, ["remove", "app"]).status == 0)
        #expect(try strata(store, ["exists", "app"]).status == 1)
        #expect(try strata(store, ["remove", "app"]).status == 0, "removing a missing layer succeeds")
    }

    @Test("with SELinux off, a mount label reaches no mount", .disabled(if: FileManager.default.fileExists(atPath: "/sys/fs/selinux/enforce"), "SELinux is on here"))
    func labelWithSELinuxOff() throws {
        let store = Store()
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        #expect(try strata(store, ["create-layer", "app", "--parent", "base", "--rw"]).status == 0)
        let mounted = try strata(store, ["mount", "app", "--label", "system_u:object_r:container_file_t:s0:c1,c2"])
        #expect(mounted.status == 0, "\(mounted.stderr)")
        let merged = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let entry = try #require(Mounts.mountTable().first { $0.mountPoint == merged })
        #expect(entry.fileSystemType == "overlay")
        #expect(!entry.superOptions.contains("context="))
        #expect(try strata(store, ["unmount", "app"]).status == 0)
        // A malformed label is refused before any mount is tried.
        let bad = try strata(store, ["mount", "app", "--label", "not-a-context"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("parse SELinux context"))
        #expect(!Mounts.isMountPoint(FilePath(merged)))
    }

    @Test("create-layer --uidmap shifts a layer whose parent has other mappings; remap shifts in place")
    func idMappings() throws {
        let store = Store()
        let source = store.root + "/src"
        try FileManager.default.createDirectory(atPath: source + "/etc", withIntermediateDirectories: true)
        try "x".write(toFile: source + "/etc/tool", atomically: false, encoding: .utf8)
        #expect(chown(source + "/etc/tool", 1000, 1000) == 0 && chmod(source + "/etc/tool", 0o4755) == 0)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-C", source, "--numeric-owner", "-cf", store.root + "/src.tar", "."]
        try tar.run()
        tar.waitUntilExit()
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        #expect(try strata(store, ["apply-diff", "base", store.root + "/src.tar"]).status == 0)

        let shifted = try strata(store, ["create-layer", "ctr", "--parent", "base", "--rw",
                                         "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"])
        #expect(shifted.status == 0, "\(shifted.stderr)")
        let home = store.root + "/root/overlay"
        func owner(_ path: String) throws -> (UInt32, UInt32, UInt16) {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            return ((attributes[.ownerAccountID] as! NSNumber).uint32Value, (attributes[.groupOwnerAccountID] as! NSNumber).uint32Value,
                    (attributes[.posixPermissions] as! NSNumber).uint16Value)
        }
        // The parent's file shows shifted in the container layer's mount (its parent idmapped),
        // setuid kept; the layer's own diff holds none of it.
        let merged = try strata(store, ["mount", "ctr"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try owner(merged + "/etc/tool") == (101_000, 101_000, 0o4755))
        #expect(try strata(store, ["unmount", "ctr"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: home + "/ctr/diff/etc"))
        #expect(try owner(home + "/base/diff/etc/tool") == (1000, 1000, 0o4755))

        #expect(try strata(store, ["remap", "base", "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"]).status == 0)
        #expect(try owner(home + "/base/diff/etc/tool") == (201_000, 201_000, 0o4755))
        // A mapping that cannot hold an owner fails and changes nothing.
        let refused = try strata(store, ["remap", "base", "--uidmap", "0:300000:10", "--gidmap", "0:300000:10"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("has no host ID in the new uid mapping"))
        #expect(try owner(home + "/base/diff/etc/tool") == (201_000, 201_000, 0o4755))
    }

    @Test("--json output parses back for layers, metadata, changes, usage and check-host")
    func jsonOutputs() throws {
        let store = Store()
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        #expect(try strata(store, ["create-layer", "app", "--parent", "base", "--rw"]).status == 0)
        let merged = try strata(store, ["mount", "app"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try "twelve bytes".write(toFile: merged + "/note", atomically: false, encoding: .utf8)
        #expect(try strata(store, ["unmount", "app"]).status == 0)

        let layers = try JSONSerialization.jsonObject(with: Data(try strata(store, ["layers", "--json"]).stdout.utf8)) as? [String]
        #expect(layers == ["app", "base"])
        let metadata = try JSONSerialization.jsonObject(with: Data(try strata(store, ["metadata", "app", "--json"]).stdout.utf8)) as? [String: String]
        #expect(metadata?["UpperDir"] == store.root + "/root/overlay/app/diff")
        #expect(metadata?["LowerDir"] == store.root + "/root/overlay/base/diff")
        let changes = try JSONSerialization.jsonObject(with: Data(try strata(store, ["changes", "app", "--json"]).stdout.utf8)) as? [[String: String]]
        #expect(changes == [["kind": "A", "path": "/note"]])
        let usage = try JSONSerialization.jsonObject(with: Data(try strata(store, ["usage", "app", "--json"]).stdout.utf8)) as? [String: Int]
        #expect(usage?["inodes"] == 2)
        #expect((usage?["bytes"] ?? 0) >= 12)
        let host = try JSONSerialization.jsonObject(with: Data(try strata(store, ["check-host", "--json"]).stdout.utf8)) as? [String: [String: Any]]
        #expect(host?["overlay filesystem"]?["present"] as? Bool == true)

        // diff -o writes the tar; cleanup leaves nothing mounted.
        let tarPath = store.root + "/app.tar"
        #expect(try strata(store, ["diff", "app", "-o", tarPath]).status == 0)
        #expect(try String(contentsOfFile: tarPath, encoding: .isoLatin1).contains("note"))
        #expect(try strata(store, ["cleanup"]).status == 0)
    }

    @Test("bad input is refused with a clear message", arguments: [
        (["create-layer", "x", "--uidmap", "0:1"], "--uidmap"),
        (["create-layer", "x", "--uidmap", "0:100000:65536", "--uidmap", "100:5:10"], "share container IDs"),
        (["create-layer", "x", "--rw", "--size", "10Q"], "size"),
        (["create-layer", "x", "--size", "1G"], "writable layers"),
        (["create-layer", "x", "--parent", "missing"], "does not exist"),
        (["apply-diff", "missing", "/dev/null"], "does not exist"),
        (["mount", "missing", "--option", "=x"], "mount option"),
        (["status", "--storage-opt", "size"], "key=value"),
        (["status", "--storage-opt", "force_mask=9999"], "force_mask"),
    ])
    func badInput(_ arguments: [String], _ expected: String) throws {
        let store = Store()
        let result = try strata(store, arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(expected), "\(result.stderr)")
        #expect(try strata(store, ["exists", "x"]).status == 1)
    }

    @Test("an OCI layout made by umoci imports and mounts through the command line",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/umoci"), "needs umoci (make test installs it)"))
    func importUmoci() throws {
        let store = Store()
        let layout = store.root + "/layout", bundle = store.root + "/bundle"
        let script = """
            set -e
            umoci init --layout \(layout) && umoci new --image \(layout):v1
            umoci unpack --image \(layout):v1 \(bundle)
            mkdir -p \(bundle)/rootfs/etc && echo imported > \(bundle)/rootfs/etc/marker
            umoci repack --image \(layout):v1 \(bundle)
            """
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        shell.standardOutput = FileHandle.nullDevice
        try shell.run()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        let imported = try strata(store, ["import", layout + ":v1"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let top = imported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(top.count == 64)
        #expect(try strata(store, ["create-layer", "ctr", "--parent", top, "--rw"]).status == 0)
        let merged = try strata(store, ["mount", "ctr"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(contentsOfFile: merged + "/etc/marker", encoding: .utf8) == "imported\n")
        #expect(try strata(store, ["unmount", "ctr"]).status == 0)
        let again = try strata(store, ["import", layout + ":v1"])
        #expect(again.stdout == imported.stdout)
        let missing = try strata(store, ["import", layout + ":nope"])
        #expect(missing.status == 1 && missing.stderr.contains("no image tagged 'nope'"))
    }

    @Test("errors are one line on stderr with a non-zero status")
    func errors() throws {
        let store = Store()
        let missing = try strata(store, ["mount", "nope"])
        #expect(missing.status == 1)
        #expect(missing.stderr.hasPrefix("strata: "))
        #expect(missing.stderr.contains("layer nope does not exist"))
        #expect(missing.stderr.split(separator: "\n").count == 1)

        let badOption = try strata(store, ["status", "--storage-opt", "bogus=1"])
        #expect(badOption.status == 1)
        #expect(badOption.stderr.contains("unknown option 'bogus'"))

        let badID = try strata(store, ["create-layer", "../escape"])
        #expect(badID.status != 0)
        #expect(!FileManager.default.fileExists(atPath: store.root + "/root/escape"))
    }

    @Test("storage.conf is read, and its errors name the file, line and key")
    func configuration() throws {
        let store = Store()
        let conf = store.root + "/storage.conf"
        try """
            # a comment
            [storage]
            driver = "overlay"
            graphroot = "\(store.root)/from-config"
            runroot = "\(store.root)/run-config"

            [storage.options.overlay]
            mountopt = "nodev"
            """.write(toFile: conf, atomically: false, encoding: .utf8)
        // --root on the command line wins over graphroot; without it the config's root is used.
        let process = try strata(store, ["create-layer", "x"])
        #expect(process.status == 0)
        var result = try strataRaw(["create-layer", "y", "--config", conf])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: store.root + "/from-config/overlay/y/diff"))
        _ = try strataRaw(["cleanup", "--config", conf])

        try """
            [storage]
            driver = "overlay"

            [storage.options.overlay]
            mount_program = "/usr/bin/fuse-overlayfs"
            """.write(toFile: conf, atomically: false, encoding: .utf8)
        // A mount program is not Strata's way (it mounts in the kernel): named in a warning, not refused.
        result = try strataRaw(["status", "--config", conf, "--root", store.root + "/r2", "--run-root", store.root + "/run2"])
        #expect(result.status == 0)
        #expect(result.stderr == "strata: warning: not used by Strata, ignored: storage.options.overlay.mount_program (\(conf):5)\n")

        try "[storage]\ngraphroot = 12\nunknown_key = \"x\"\n".write(toFile: conf, atomically: false, encoding: .utf8)
        result = try strataRaw(["status", "--config", conf])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(conf):2: graphroot"))
    }

    private func strataRaw(_ args: [String]) throws -> CLIResult {
        try capture(strataBinary(), args)
    }
}
