import Foundation
import Testing

/// Runs `program` with `arguments` and exactly `environment` (nothing inherited but PATH).
private func runIsolated(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CLIResult {
    try capture(program, arguments, input: [],
                environment: environment.merging(["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]) { old, _ in old })
}

/// `Key: value` lines as a dictionary.
private func fields(_ text: String) -> [String: String] {
    var result: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let colon = line.range(of: ": ") else { continue }
        result[String(line[..<colon.lowerBound])] = String(line[colon.upperBound...])
    }
    return result
}

/// Driver options as a set of Strata's spellings: containers-storage prefixes each with the
/// driver's name, repeats some, and (1.43) calls an additional image store `imagestore`.
private func driverOptions(_ text: String?, containersStorage: Bool) -> Set<String> {
    let list = (text ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: " ").map(String.init)
    return Set(list.map { option in
        guard containersStorage else { return option }
        var option = option
        if option.hasPrefix("overlay.") { option.removeFirst("overlay.".count) }
        if option.hasPrefix("imagestore=") { option = "additional" + option }
        return option
    })
}

private let containersStorage = "/usr/bin/containers-storage"

/// The example storage.conf files Debian's packages install, as text: containers-storage's own,
/// and the two in podman's documentation (rootless users who mount with fuse-overlayfs).
private func example(_ name: String) throws -> String {
    func markdownBlock(_ doc: String, after marker: String) throws -> String {
        let text = try runIsolated("/bin/zcat", [doc]).stdout
        let start = try #require(text.range(of: marker))
        let open = try #require(text.range(of: "```", range: start.upperBound..<text.endIndex))
        let body = try #require(text[open.upperBound...].firstIndex(of: "\n"))
        let close = try #require(text.range(of: "\n```", range: body..<text.endIndex))
        return String(text[text.index(after: body)..<close.lowerBound]) + "\n"
    }
    switch name {
    case "debian":
        return try String(contentsOfFile: "/usr/share/containers/storage.conf", encoding: .utf8)
    case "podman-troubleshooting":
        // The block after "$ cat ~/.config/containers/storage.conf".
        // The block after "For example": a console transcript, "$ cat ~/.config/containers/storage.conf"
        // and the file.
        let block = try markdownBlock("/usr/share/doc/podman/troubleshooting.md.gz", after: "mount point and to which you have")
        return block.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("$ ") }.joined(separator: "\n")
    default:
        // An excerpt with "(...)" for the parts left out: those lines go.
        let block = try markdownBlock("/usr/share/doc/podman/rootless_tutorial.md.gz", after: "option in `[storage.options]`")
        return block.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.contains("(...)") }.joined(separator: "\n")
    }
}

/// `text` with its graphroot and runroot pointed into `store` (added under `[storage]` when the
/// file has none), and nothing else changed.
private func relocated(_ text: String, into store: Store) -> String {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for key in ["graphroot", "runroot"] {
        let value = "\(key) = \"\(store.root)/\(key)\""
        if let i = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(key) ") }) {
            lines[i] = value
        } else if let i = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "[storage]" }) {
            lines.insert(value, at: i + 1)
        }
    }
    return lines.joined(separator: "\n")
}

@Suite("storage.conf through the command line", .serialized)
struct ConfigCLITests {
    @Test("Debian's storage.conf gives what containers-storage status gives",
          .enabled(if: FileManager.default.fileExists(atPath: containersStorage),
                   "needs containers-storage (in the Makefile's DEBIAN_PACKAGES)"))
    func debianMatchesContainersStorage() throws {
        try compareWithContainersStorage("debian")
    }

    @Test("podman's rootless examples give what containers-storage status gives",
          .enabled(if: FileManager.default.fileExists(atPath: containersStorage)
                       && FileManager.default.fileExists(atPath: "/usr/share/doc/podman/troubleshooting.md.gz")
                       && FileManager.default.fileExists(atPath: "/usr/share/doc/podman/rootless_tutorial.md.gz"),
                   "needs containers-storage and podman's documentation under /usr/share/doc/podman (both in DEBIAN_PACKAGES; an image that leaves out /usr/share/doc lacks the latter)"),
          arguments: ["podman-troubleshooting", "podman-rootless-tutorial"])
    func podmanMatchesContainersStorage(_ name: String) throws {
        try compareWithContainersStorage(name)
    }

    private func compareWithContainersStorage(_ name: String) throws {
        let store = Store()
        let conf = store.root + "/storage.conf"
        let original = try example(name)
        try relocated(original, into: store).write(toFile: conf, atomically: false, encoding: .utf8)

        let theirs = try runIsolated(containersStorage, ["status"], environment: ["CONTAINERS_STORAGE_CONF": conf])
        _ = try? runIsolated(containersStorage, ["shutdown"], environment: ["CONTAINERS_STORAGE_CONF": conf])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let ours = try runIsolated(strataBinary(), ["status", "--config", conf])
        #expect(ours.status == 0, "\(ours.stderr)")
        // containers-storage prints its status on stderr.
        let (a, b) = (fields(theirs.stderr), fields(ours.stdout))
        for key in ["Root", "Run Root", "Driver Name"] {
            #expect(a[key] != nil && a[key] == b[key], "\(name): \(key)")
        }
        // Strata mounts in the kernel: a mount_program is named in the warning instead.
        var expected = driverOptions(a["Driver Options"], containersStorage: true)
        let programs = expected.filter { $0.hasPrefix("mount_program=") }
        expected.subtract(programs)
        #expect(driverOptions(b["Driver Options"], containersStorage: false) == expected, "\(name)")

        let warnings = ours.stderr.split(separator: "\n")
        #expect(warnings.allSatisfy { $0.hasPrefix("strata: warning: ") }, "\(ours.stderr)")
        let ignored = warnings.filter { $0.hasPrefix("strata: warning: not used by Strata, ignored: ") }
        #expect(ignored.count == (original.contains("pull_options") || !programs.isEmpty ? 1 : 0), "\(ours.stderr)")
        if original.contains("pull_options") { #expect(ignored.first?.contains("storage.options.pull_options (\(conf):") == true) }
        if !programs.isEmpty { #expect(ignored.first?.contains("storage.options.mount_program (\(conf):") == true) }

        // The command from the issue: the stock file, unchanged but for its two paths.
        let layers = try runIsolated(strataBinary(), ["layers", "--config", conf])
        #expect(layers.status == 0, "\(layers.stderr)")
    }

    @Test("CONTAINERS_STORAGE_CONF is read without --config; --config and the command line win over it")
    func environmentVariable() throws {
        let store = Store()
        let conf = store.root + "/env.conf"
        try """
            [storage]
            driver = "overlay"
            graphroot = "\(store.root)/env-root"
            runroot = "\(store.root)/env-run"
            [storage.options.overlay]
            mountopt = "nodev"
            ignore_chown_errors = "true"
            """.write(toFile: conf, atomically: false, encoding: .utf8)
        let other = store.root + "/other.conf"
        try "[storage]\ngraphroot = \"\(store.root)/other-root\"\nrunroot = \"\(store.root)/other-run\"\n"
            .write(toFile: other, atomically: false, encoding: .utf8)
        let environment = ["CONTAINERS_STORAGE_CONF": conf]

        let plain = fields(try runIsolated(strataBinary(), ["status"], environment: environment).stdout)
        #expect(plain["Root"] == "\(store.root)/env-root")
        #expect(plain["Driver Options"] == "[mountopt=nodev ignore_chown_errors=true]")

        let overridden = try runIsolated(strataBinary(), ["status", "--root", store.root + "/cli-root", "--run-root", store.root + "/cli-run",
                                                  "--storage-opt", "mountopt=noexec"], environment: environment)
        #expect(overridden.status == 0, "\(overridden.stderr)")
        #expect(fields(overridden.stdout)["Root"] == "\(store.root)/cli-root")
        #expect(fields(overridden.stdout)["Driver Options"] == "[ignore_chown_errors=true mountopt=noexec]")

        let named = fields(try runIsolated(strataBinary(), ["status", "--config", other], environment: environment).stdout)
        #expect(named["Root"] == "\(store.root)/other-root")
        #expect(named["Driver Options"] == "[]")
    }

    @Test("--config system reads the file containers/storage would, and a bad one fails in one line",
          .enabled(if: !["/usr/share/containers/storage.conf.d", "/etc/containers/storage.conf.d"].contains {
                       FileManager.default.fileExists(atPath: $0) },
                   "this host has storage.conf.d drop-ins, which this test would read; their order is tested in ConfigSourcesTests"))
    func system() throws {
        let store = Store()
        let globals = ["--root", store.root + "/root", "--run-root", store.root + "/run"]
        let main = ["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"].first {
            FileManager.default.fileExists(atPath: $0)
        }
        let system = try runIsolated(strataBinary(), ["status", "--config", "system"] + globals)
        #expect(system.status == 0, "\(system.stderr)")
        let direct = try runIsolated(strataBinary(), ["status"] + (main.map { ["--config", $0] } ?? []) + globals)
        #expect(system.stdout == direct.stdout)
        #expect(system.stderr == direct.stderr)

        let bad = store.root + "/bad.conf"
        try "[storage]\ndriver = \"overlay\"\ngraphroot = [\"/a\"]\n".write(toFile: bad, atomically: false, encoding: .utf8)
        let failed = try runIsolated(strataBinary(), ["status", "--config", "system"] + globals, environment: ["CONTAINERS_STORAGE_CONF": bad])
        #expect(failed.status == 1)
        #expect(failed.stderr == "strata: read configuration: \(bad):3: graphroot: must be a string, not an array\n")
    }
}
