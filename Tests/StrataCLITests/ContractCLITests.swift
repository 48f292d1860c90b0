import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The permission bits of `path`, or `nil` when it cannot be read.
func permissionBits(_ path: String) -> Int? {
    var st = stat()
    guard lstat(path, &st) == 0 else { return nil }
    return Int(st.st_mode) & 0o7777
}

/// The lines a command printed, as a list.
func lines(_ result: CLIResult) -> [String] {
    result.stdout.split(separator: "\n").map(String.init)
}

/// Where `strata` and containers/storage's CLI agree on the contract, and the command line that
/// scripts written for podman and containers-storage expect.
@Suite("strata command line: the reference contract", .serialized)
struct ContractCLITests {
    @Test("global options are taken before the subcommand, after it, and both")
    func globalOptionsBeforeAndAfter() throws {
        let store = Store()
        let root = store.root + "/root", runRoot = store.root + "/run"
        let before = try runProgram(strataBinary(), ["--root", root, "--run-root", runRoot, "create-layer", "before"])
        #expect(before.status == 0, "\(before.output)")
        #expect(FileManager.default.fileExists(atPath: root + "/overlay/before/diff"), "the layer is not in the store --root named")
        #expect(try strata(store, ["create-layer", "after"]).status == 0)
        let mixed = try runProgram(strataBinary(), ["--root", root, "layers", "--run-root", runRoot])
        #expect(mixed.status == 0 && mixed.output == "after\nbefore\n", "\(mixed.output)")
        let options = try runProgram(strataBinary(), ["--storage-opt", "skip_mount_home=true", "--log-level", "error",
                                                      "--root", root, "exists", "before", "--run-root", runRoot])
        #expect(options.status == 0, "\(options.output)")

        // One definition: each global option is listed once in the top-level help and in a
        // subcommand's.
        for arguments in [["--help"], ["layers", "--help"]] {
            let help = try runProgram(strataBinary(), arguments)
            #expect(help.status == 0)
            for option in ["--root <dir>", "--run-root <dir>", "--storage-opt <key=value>", "--config <file|system>"] {
                let listed = help.output.components(separatedBy: option).count - 1
                #expect(listed >= 1 && listed <= 2, "\(arguments): \(option) appears \(listed) times")  // usage line and option list
            }
        }
        let unknown = try runProgram(strataBinary(), ["--no-such-option", "layers"])
        #expect(unknown.status != 0 && unknown.output.contains("--no-such-option"))
    }

    @Test("a base layer's root is 0555, read-only or writable, mounted or not; a child's is its parent's")
    func baseLayerRootMode() throws {
        let store = Store()
        let home = store.root + "/root/overlay"
        #expect(try strata(store, ["create-layer", "empty"]).status == 0)
        #expect(try strata(store, ["create-layer", "writable", "--rw"]).status == 0)
        #expect(permissionBits(home + "/empty/diff") == 0o555)
        #expect(permissionBits(home + "/writable/diff") == 0o555)
        let mounted = try strata(store, ["mount", "writable"])
        #expect(mounted.status == 0, "\(mounted.stderr)")
        #expect(permissionBits(mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == 0o555)
        #expect(try strata(store, ["unmount", "writable"]).status == 0)

        #expect(chmod(home + "/empty/diff", 0o751) == 0)
        #expect(try strata(store, ["create-layer", "child", "--parent", "empty"]).status == 0)
        #expect(try strata(store, ["create-layer", "container", "--parent", "empty", "--rw"]).status == 0)
        #expect(permissionBits(home + "/child/diff") == 0o751)
        #expect(permissionBits(home + "/container/diff") == 0o751)
        #expect(try strata(store, ["create-layer", "copy", "--parent", "empty", "--template", "child"]).status == 0)
        #expect(permissionBits(home + "/copy/diff") == 0o751)
    }

    @Test("a writable layer on 500 ancestors mounts; a read-only layer or mount 501 deep gets one clear error line")
    func writableOnFiveHundred() throws {
        let store = Store()
        let globals = store.globals.map { "'\($0)'" }.joined(separator: " ")
        let chain = try runProgram("/bin/sh", ["-c", """
            set -e
            '\(strataBinary())' \(globals) create-layer l0
            i=1; while [ $i -lt 500 ]; do '\(strataBinary())' \(globals) create-layer l$i --parent l$((i - 1)); i=$((i + 1)); done
            """])
        try #require(chain.status == 0, "\(chain.output)")
        let home = store.root + "/root/overlay"
        try "bottom".write(toFile: home + "/l0/diff/bottom", atomically: false, encoding: .utf8)
        try "top".write(toFile: home + "/l499/diff/top", atomically: false, encoding: .utf8)

        #expect(try strata(store, ["create-layer", "container", "--parent", "l499", "--rw"]).status == 0)
        let mounted = try strata(store, ["mount", "container"])
        try #require(mounted.status == 0, "\(mounted.stderr)")
        let merged = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try String(contentsOfFile: merged + "/bottom", encoding: .utf8) == "bottom")
        #expect(try String(contentsOfFile: merged + "/top", encoding: .utf8) == "top")
        try "mine".write(toFile: merged + "/mine", atomically: false, encoding: .utf8)
        #expect(try strata(store, ["unmount", "container"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: home + "/container/diff/mine"))

        let readOnly = try strata(store, ["mount", "container", "--ro"])
        #expect(readOnly.status == 1 && readOnly.stderr.hasPrefix("strata: mount layer container: ")
                && readOnly.stderr.contains("501 lower layers") && readOnly.stderr.split(separator: "\n").count == 1,
                "\(readOnly.stderr)")
        let image = try strata(store, ["create-layer", "image501", "--parent", "l499"])
        #expect(image.status == 1 && image.stderr.contains("501 layers deep") && image.stderr.split(separator: "\n").count == 1,
                "\(image.stderr)")
        #expect(try strata(store, ["exists", "image501"]).status == 1)
    }

    @Test("changes, diff-size, diff and apply-diff answer against --parent ID or --no-parent, on layers made with --template")
    func explicitParent() throws {
        let store = Store()
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        #expect(try strata(store, ["apply-diff", "base"], stdin: try tarOf(["a": "a", "dir/c": "c"])).status == 0)
        #expect(try strata(store, ["create-layer", "mid", "--parent", "base"]).status == 0)
        #expect(try strata(store, ["apply-diff", "mid"], stdin: try tarOf(["b": "bb", ".wh.a": ""])).status == 0)
        #expect(try strata(store, ["create-layer", "template", "--parent", "mid"]).status == 0)
        #expect(try strata(store, ["apply-diff", "template"], stdin: try tarOf(["t": "ttt"])).status == 0)
        #expect(try strata(store, ["create-layer", "copy", "--parent", "mid", "--template", "template"]).status == 0)

        #expect(lines(try strata(store, ["changes", "copy"])) == ["A /t"])
        #expect(lines(try strata(store, ["changes", "copy", "--parent", "mid"])) == ["A /t"])
        #expect(lines(try strata(store, ["changes", "copy", "--parent", "base"])) == ["D /a", "A /b", "A /t"])
        #expect(lines(try strata(store, ["changes", "copy", "--parent", "template"])) == [])
        #expect(lines(try strata(store, ["changes", "copy", "--no-parent"])) == ["A /b", "A /dir", "A /dir/c", "A /t"])
        #expect(try strata(store, ["diff-size", "copy"]).stdout == "3\n")
        #expect(try strata(store, ["diff-size", "copy", "--parent", "base"]).stdout == "5\n")
        #expect(try strata(store, ["diff-size", "copy", "--parent", "template"]).stdout == "0\n")
        #expect(try strata(store, ["diff-size", "copy", "--no-parent"]).stdout == "6\n")

        // The full tree as a new base layer; the stream against the grandparent applied to a new
        // layer on the parent; the full tree applied with --no-parent to a layer on the parent.
        let full = store.root + "/full.tar", grand = store.root + "/grand.tar"
        #expect(try strata(store, ["diff", "copy", "--no-parent", "-o", full]).status == 0)
        #expect(try strata(store, ["diff", "copy", "--parent", "base", "-o", grand]).status == 0)
        #expect(try strata(store, ["create-layer", "flat"]).status == 0)
        #expect(try strata(store, ["apply-diff", "flat", full, "--no-parent"]).stdout == "6\n")
        #expect(try strata(store, ["create-layer", "replayed", "--parent", "mid"]).status == 0)
        let replayed = try strata(store, ["apply-diff", "replayed", grand, "--parent", "base"])
        #expect(replayed.status == 0, "\(replayed.stderr)")
        #expect(try strata(store, ["create-layer", "whole", "--parent", "mid"]).status == 0)
        #expect(try strata(store, ["apply-diff", "whole", full, "--no-parent"]).status == 0)
        #expect(lines(try strata(store, ["changes", "flat"])) == ["A /b", "A /dir", "A /dir/c", "A /t"])
        for layer in ["replayed", "whole"] {
            #expect(lines(try strata(store, ["changes", layer, "--parent", "base"])) == ["D /a", "A /b", "A /t"], "\(layer)")
            #expect(lines(try strata(store, ["changes", layer, "--no-parent"])) == ["A /b", "A /dir", "A /dir/c", "A /t"], "\(layer)")
        }

        let both = try strata(store, ["changes", "copy", "--parent", "base", "--no-parent"])
        #expect(both.status != 0 && both.stderr.contains("--parent and --no-parent exclude each other"), "\(both.stderr)")
        let missing = try strata(store, ["diff-size", "copy", "--parent", "nosuch"])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("strata: ") && missing.stderr.contains("nosuch"), "\(missing.stderr)")
        #expect(missing.stderr.split(separator: "\n").count == 1)
        let help = try runProgram(strataBinary(), ["changes", "--help"])
        #expect(help.output.contains("--parent <id>") && help.output.contains("--no-parent"))
    }
}
