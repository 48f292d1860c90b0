import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension Side {
    /// containers-storage 1.43's CLI with its overlay driver (Debian's `containers-storage`).
    static let containersStorage = Side(name: "c/s")
}

/// A uid/gid mapping as `container:host:size`, spelled the same way by both CLIs.
struct BenchIDMap {
    var container: Int, host: Int, size: Int
    var text: String { "\(container):\(host):\(size)" }
}

/// One side's private store on a fresh scratch filesystem, spoken to through its command line.
/// The two stores take the same verbs (`createLayer`, `applyDiff`, `mount`…) and differ only in
/// how they spell them.
final class BenchStore {
    let side: Side
    let fs: ScratchFileSystem
    private let strataExecutable: String
    private let config: String

    init(side: Side, fs: ScratchFileSystem, strataExecutable: String) throws {
        self.side = side
        self.fs = fs
        self.strataExecutable = strataExecutable
        config = fs.path("storage.conf")
        if side == .containersStorage {
            // The CLI ignores storage.conf when -g, -R or --storage-opt are given, so the store is
            // set up through CONTAINERS_STORAGE_CONF alone.
            mkdir(fs.path("cs"), 0o700)
            let text = """
                [storage]
                driver = "overlay"
                graphroot = "\(fs.path("cs/root"))"
                runroot = "\(fs.path("cs/run"))"

                [storage.options.overlay]
                mountopt = "nodev"

                """
            try Self.write(text, to: config)
            // In this process's environment, which every spawned command inherits: stores are
            // made and torn down one at a time, and strata ignores the variable. (Through `env`,
            // each timed call would also pay for starting `env`, about 0.7 ms.)
            setenv("CONTAINERS_STORAGE_CONF", config, 1)
        }
    }

    /// The full argument vector for one CLI call on this store.
    func command(_ arguments: [String]) -> [String] {
        switch side {
        case .containersStorage:
            return ["containers-storage"] + arguments
        default:
            // The global options belong to each subcommand: `strata SUB --root R --run-root RR …`.
            return [strataExecutable, arguments[0], "--root", fs.path("strata"), "--run-root", fs.path("strata-run")]
                + arguments.dropFirst()
        }
    }

    // MARK: The verbs, spelled for each side

    func createLayer(_ id: String, parent: String? = nil, uidMaps: [BenchIDMap] = [], gidMaps: [BenchIDMap] = []) -> [String] {
        let maps = uidMaps.flatMap { ["--uidmap", $0.text] } + gidMaps.flatMap { ["--gidmap", $0.text] }
        switch side {
        case .containersStorage where uidMaps.count > 1:
            // Its CLI takes one `--uidmap` triple (the last flag wins), and c/s shifts a single
            // contiguous range with an idmapped mount instead of chowning. Several ranges are
            // reachable only through `--subuidmap NAME`, read from /etc/subuid: give it a private
            // /etc/subuid and /etc/subgid in a private mount namespace (the host's stay untouched).
            // That forces its chown walk. unshare + sh + two bind mounts cost a few milliseconds.
            precondition(uidMaps.map(\.text) == gidMaps.map(\.text), "c/s side: gid maps must equal uid maps")
            let file = fs.path("subid")
            try? Self.write(uidMaps.map { "stratabench:\($0.host):\($0.size)\n" }.joined(), to: file)
            let inner = command(["create-layer", "--id", id, "--subuidmap", "stratabench"] + (parent.map { [$0] } ?? []))
            return ["unshare", "--mount", "sh", "-c",
                    "mount --bind \(file) /etc/subuid && mount --bind \(file) /etc/subgid && exec \"$@\"", "sh"] + inner
        case .containersStorage:
            return command(["create-layer", "--id", id] + maps + (parent.map { [$0] } ?? []))
        default:
            return command(["create-layer", id] + (parent.map { ["--parent", $0] } ?? []) + maps)
        }
    }

    func applyDiff(_ id: String, archive: String) -> [String] {
        side == .containersStorage ? command(["applydiff", "-f", archive, id]) : command(["apply-diff", id, archive])
    }

    func diff(_ id: String, output: String) -> [String] {
        side == .containersStorage ? command(["diff", "-u", "-f", output, id]) : command(["diff", id, "-o", output])
    }

    func changes(_ id: String) -> [String] { command(["changes", id]) }

    func diffSize(_ id: String) -> [String] {
        command([side == .containersStorage ? "diffsize" : "diff-size", id])
    }

    func mount(_ id: String) -> [String] { command(["mount", id]) }
    func unmount(_ id: String) -> [String] { command(["unmount", id]) }
    func exists(_ id: String) -> [String] { command(["exists", id]) }

    /// Runs an untimed helper call; fails when it fails.
    func run(_ arguments: [String]) throws {
        try Shell.run(arguments, quiet: true)
    }

    /// Runs an untimed call and returns its standard output.
    func output(_ arguments: [String]) throws -> String {
        let file = fs.path("output.txt")
        defer { unlink(file) }
        let usage = try Shell.measure(arguments, stdoutTo: file)
        guard usage.status == 0 else {
            throw BenchError("`\(arguments.joined(separator: " "))` exited with status \(usage.status)")
        }
        return Shell.readLines(file).joined(separator: "\n")
    }

    /// Mounts `id`, runs `body` on the merged directory, unmounts (all untimed).
    func throughMount(_ id: String, _ body: (String) throws -> Void) throws {
        let merged = try output(mount(id)).trimmed(of: " \n")
        guard merged.hasPrefix("/") else { throw BenchError("\(side) mount \(id) printed \(merged)") }
        try body(merged)
        try run(unmount(id))
    }

    /// Shuts the store down, unmounts what it left (c/s leaves its home bind-mounted on itself),
    /// and removes the filesystem.
    func tearDown() {
        if side == .containersStorage {
            _ = try? Shell.measure(command(["shutdown"]), stdoutTo: "/dev/null")
            unsetenv("CONTAINERS_STORAGE_CONF")
        }
        let prefix = fs.mountPoint + "/"
        for entry in Mounts.mountTable().reversed() where entry.mountPoint.hasPrefix(prefix) {
            do { try Mounts.unmount(FilePath(entry.mountPoint)) } catch {
                try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
            }
        }
        fs.tearDown()
    }

    private static func write(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot write \(path)") }
        defer { close(fd) }
        var text = text
        let ok = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count }
        guard ok else { throw BenchError("cannot write \(path)") }
    }
}
