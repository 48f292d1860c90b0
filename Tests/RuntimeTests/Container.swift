import Foundation

/// How a container layer gets its owners (the two flows of issue 14, and no user namespace).
enum Flow: String, CaseIterable, CustomStringConvertible {
    /// `create-layer C --parent IMG --rw`, `mount C`; the runtime runs as host root.
    case rootful
    /// `create-layer C --parent IMG --rw --uidmap … --gidmap …` (owners shifted on disk), `mount C`.
    case shifted
    /// `create-layer C --parent IMG --rw`, `mount C --uidmap … --gidmap …` (an idmapped mount).
    case idmapped

    var description: String { rawValue }
    var userNamespace: Bool { self != .rootful }
    /// Where container ID 0 is on the host.
    var hostOffset: UInt32 { userNamespace ? UserNamespace.hostBase : 0 }

    var createArguments: [String] {
        self == .shifted ? ["--uidmap", UserNamespace.mapping, "--gidmap", UserNamespace.mapping] : []
    }
    var mountArguments: [String] {
        self == .idmapped ? ["--uidmap", UserNamespace.mapping, "--gidmap", UserNamespace.mapping] : []
    }
}

/// The shell script every test container runs (busybox sh), and how to read what it printed.
///
/// It prints `@id`, its cgroups (`@cgroup`), one `@ls` line per checked name (`ls -lnd`), then writes as container uid 0
/// (`/newtop`, `/tmp/by-root`), uid 1 (`/tmp/by-daemon`, through `su daemon`) and uid 1000
/// (`/home/user/by-user`, through `su user`), deletes `/etc/to-delete` and
/// `/home/user/old-note`, and lists the new files. Each step prints `@ok NAME` or `@fail NAME`, so
/// one refused write does not hide the others.
enum ContainerScript {
    /// The files the script makes, with the container owner each must have.
    static let created: [(path: String, owner: Owner)] = [
        ("/newtop", Owner(uid: 0, gid: 0)),
        ("/tmp/by-root", Owner(uid: 0, gid: 0)),
        ("/tmp/by-daemon", Owner(uid: 1, gid: 1)),
        ("/home/user/by-user", Owner(uid: 1000, gid: 1000)),
    ]
    /// The files the script deletes (whiteouts in the layer).
    static let deleted = ["/etc/to-delete", "/home/user/old-note"]
    /// Every step the script reports.
    static let steps = ["newtop", "by-root", "by-daemon", "by-user", "delete"]

    static func text(tag: String = "", pause: Int = 0) -> String {
        let checked = BusyboxImage.checkedOwners.map(\.path).joined(separator: " ")
        let made = created.map(\.path).joined(separator: " ")
        return """
            echo "@id $(id)"
            while read -r line; do echo "@cgroup $line"; done < /proc/self/cgroup
            for f in \(checked); do echo "@ls $(ls -lnd $f)"; done
            step() { name=$1; shift; if "$@"; then echo "@ok $name"; else echo "@fail $name"; fi; }
            step newtop touch /newtop
            step by-root sh -c 'echo root\(tag) > /tmp/by-root'
            step by-daemon su -s /bin/sh daemon -c 'echo daemon > /tmp/by-daemon'
            step by-user su -s /bin/sh user -c 'echo user > /home/user/by-user'
            step delete rm \(deleted.joined(separator: " "))
            for f in \(made); do test -e $f && echo "@ls $(ls -lnd $f)"; done
            sleep \(pause)
            cat /tmp/by-root
            """
    }

    /// A script that only looks: `@id`, and `@ls` lines for the checked and the created names.
    static func listing() -> String {
        let names = (BusyboxImage.checkedOwners.map(\.path) + created.map(\.path)).joined(separator: " ")
        return """
            echo "@id $(id)"
            for f in \(names); do test -e $f && echo "@ls $(ls -lnd $f)"; done
            for f in \(deleted.joined(separator: " ")); do test -e $f && echo "@present $f"; done
            echo "@done"
            """
    }

    /// What one run of the script printed, parsed.
    struct Report {
        var id = ""
        var owners: [String: Owner] = [:]
        var ok: Set<String> = []
        var failed: Set<String> = []
        var cgroups: [String] = []
        var present: [String] = []
        var lines: [String] = []

        init(_ stdout: String) {
            var listed: [String] = []
            for line in stdout.split(separator: "\n").map(String.init) {
                lines.append(line)
                if line.hasPrefix("@id ") { id = String(line.dropFirst(4)) }
                else if line.hasPrefix("@ls ") { listed.append(String(line.dropFirst(4))) }
                else if line.hasPrefix("@ok ") { ok.insert(String(line.dropFirst(4))) }
                else if line.hasPrefix("@fail ") { failed.insert(String(line.dropFirst(6))) }
                else if line.hasPrefix("@cgroup ") { cgroups.append(String(line.dropFirst(8))) }
                else if line.hasPrefix("@present ") { present.append(String(line.dropFirst(9))) }
            }
            owners = parseListing(listed)
        }
    }
}

/// One container of a test: its layer on the store's image, mounted for its flow, and its bundle.
struct TestContainer {
    let store: RuntimeStore
    let name: String
    let flow: Flow
    let runtime: OCIRuntime
    var merged = ""

    init(store: RuntimeStore, name: String, flow: Flow, runtime: OCIRuntime) {
        self.store = store
        self.name = name
        self.flow = flow
        self.runtime = runtime
    }

    /// `strata create-layer` and `strata mount` for the flow; keeps the merged path.
    mutating func prepare(image: String) throws {
        try store.mustStrata(["create-layer", name, "--parent", image, "--rw"] + flow.createArguments)
        try mount(flow.mountArguments)
    }

    /// `strata mount` with `arguments`; keeps the merged path.
    mutating func mount(_ arguments: [String]) throws {
        merged = try store.mustStrata(["mount", name] + arguments).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The runtime's name for the container: unique on the host (crun and runc name its cgroup so).
    var runtimeID: String { "strata-rt-\(getpid())-\(name)" }

    /// Runs the container script with the runtime, in the flow's user namespace.
    func run(tag: String = "", pause: Int = 0) throws -> ProgramResult {
        try run(script: ContainerScript.text(tag: tag, pause: pause), hostBase: flow.userNamespace ? UserNamespace.hostBase : nil)
    }

    /// Runs `script` with the runtime, in a user namespace at `hostBase` (none when nil).
    func run(script: String, hostBase: UInt32?) throws -> ProgramResult {
        let bundle = store.dir + "/bundle-" + name
        try runtime.makeBundle(at: bundle, rootPath: merged, args: ["/bin/sh", "-c", script], hostBase: hostBase)
        return try runtime.run(bundle: bundle, id: runtimeID, stateRoot: store.runtimeState)
    }

    /// The layer's upper directory (`strata metadata`, UpperDir).
    func upperDir() throws -> String {
        let text = try store.mustStrata(["metadata", name])
        for line in text.split(separator: "\n") where line.hasPrefix("UpperDir:") {
            return line.dropFirst("UpperDir:".count).trimmingCharacters(in: .whitespaces)
        }
        throw ProgramFailure(command: ["strata", "metadata", name],
                             result: ProgramResult(status: 0, stdout: text, stderr: "no UpperDir line"))
    }
}

/// A store with the busybox image applied as layer `image`.
func storeWithImage() throws -> RuntimeStore {
    let store = try RuntimeStore()
    let tar = try BusyboxImage.tar.get()
    try store.mustStrata(["create-layer", "image"])
    let file = store.dir + "/image.tar"
    try tar.write(to: URL(fileURLWithPath: file))
    try store.mustStrata(["apply-diff", "image", file])
    return store
}
