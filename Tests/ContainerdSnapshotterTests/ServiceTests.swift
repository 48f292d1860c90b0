import ContainerdSnapshotter
import Foundation
import GRPCCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("strata-snapshotter over its socket", .serialized, .enabled(if: runningAsRoot, "mounts overlays: needs root"))
struct ServiceTests {
    @Test("bad requests get containerd's status codes, and the server keeps serving")
    func statusCodes() async throws {
        let scratch = Scratch("svc")
        let sn = try SnapshotterProcess(in: scratch)
        try sn.start()
        try await sn.withClient { client in
            _ = try await client.prepare(Request.prepare("a"))
            #expect(await statusCode { _ = try await client.prepare(Request.prepare("a")) } == .alreadyExists)
            #expect(await statusCode { _ = try await client.stat(Request.stat("missing")) } == .notFound)
            #expect(await statusCode { _ = try await client.prepare(Request.prepare("b", parent: "missing")) } == .notFound)
            #expect(await statusCode { _ = try await client.prepare(Request.prepare("b", parent: "a")) } == .invalidArgument)
            #expect(await statusCode { _ = try await client.prepare(Request.prepare("bad\u{1}key")) } == .invalidArgument)
            #expect(await statusCode { _ = try await client.prepare(Request.prepare(String(repeating: "k", count: 5000))) } == .invalidArgument)
            #expect(await statusCode {
                _ = try await client.list(Request.list(["kind=active"])) { response in
                    for try await _ in response.messages {}
                }
            } == .invalidArgument)
            _ = try await client.commit(Request.commit("c", key: "a"))
            _ = try await client.view(Request.view("v", parent: "c"))
            #expect(await statusCode { _ = try await client.commit(Request.commit("d", key: "v")) } == .failedPrecondition)
            #expect(await statusCode { _ = try await client.remove(Request.remove("c")) } == .failedPrecondition)
            #expect(await statusCode { _ = try await client.mounts(Request.mounts("c")) } == .failedPrecondition)
            #expect(await statusCode { _ = try await client.remove(Request.remove("missing")) } == .notFound)
            let info = try await client.stat(Request.stat("c")).info
            #expect(info.kind == .committed && info.name == "c" && info.parent.isEmpty)
            let names = try await client.list(Request.list(["kind==view"])) { response in
                var names: [String] = []
                for try await message in response.messages { names += message.info.map(\.name) }
                return names
            }
            #expect(names == ["v"])
        }
        #expect(sn.process?.isRunning == true)
    }

    /// The operations a crash point interrupts, run until the process dies.
    static func drive(_ client: Containerd_Services_Snapshots_V1_Snapshots.Client<some ClientTransport>) async throws {
        _ = try await client.prepare(Request.prepare("a"))
        _ = try await client.commit(Request.commit("c", key: "a"))
        _ = try await client.prepare(Request.prepare("b", parent: "c"))
        _ = try await client.remove(Request.remove("b"))
    }

    @Test("kill -9 during Prepare, Commit and Remove: after a restart the snapshots are whole or absent and strata check is clean",
          arguments: ["prepare-after-row", "prepare-after-layer", "commit-before-transaction", "commit-after-transaction",
                      "remove-after-mark", "remove-after-layer"])
    func killed(at point: String) async throws {
        let scratch = Scratch("kill")
        let sn = try SnapshotterProcess(in: scratch)
        try sn.start(killAt: point)
        let failure = await statusCode { try await sn.withClient { try await Self.drive($0) } }
        #expect(failure != nil, "the crash point \(point) was not reached")
        let ended = sn.waitForExit()
        #expect(ended.reason == .uncaughtSignal && ended.status == SIGKILL)

        try sn.start()
        let infos = try await sn.withClient { client in
            try await client.list(Request.list()) { response in
                var infos: [Containerd_Services_Snapshots_V1_Info] = []
                for try await message in response.messages { infos += message.info }
                return infos
            }
        }
        let state = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0.kind) })
        let expected: [String: Containerd_Services_Snapshots_V1_Kind] = switch point {
        case "prepare-after-row", "prepare-after-layer": [:]
        case "commit-before-transaction": ["a": .active]
        case "commit-after-transaction": ["c": .committed]
        case "remove-after-mark", "remove-after-layer": ["c": .committed]
        default: [:]
        }
        #expect(state == expected, "after a kill at \(point)")
        // Every snapshot left works: mounts of the active one, a child of the committed one.
        try await sn.withClient { client in
            if state["a"] == .active { _ = try await client.mounts(Request.mounts("a")) }
            if state["c"] == .committed { _ = try await client.prepare(Request.prepare("again", parent: "c")) }
            _ = try await client.prepare(Request.prepare("new"))
        }
        sn.stop()
        let check = try run(builtProgram("strata"), ["check", "--root", sn.root, "--run-root", sn.runRoot])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let layers = try run(builtProgram("strata"), ["layers", "--root", sn.root, "--run-root", sn.runRoot])
        // One layer a snapshot: those left, "again" on a committed one, and "new".
        #expect(layers.stdout.split(separator: "\n").count == state.count + (state["c"] == .committed ? 1 : 0) + 1)
    }
}

@Suite("containerd and strata-snapshotter agree after a crash", .serialized,
       .enabled(if: runningAsRoot, "containerd needs root"),
       .enabled(if: containerdInstalled, "needs Debian's containerd and runc"))
struct ContainerdCrashTests {
    @Test("kill -9 during a Prepare through ctr; after a restart both list the same snapshots",
          arguments: ["prepare-after-row", "prepare-after-layer", "commit-before-transaction"])
    func killedThroughContainerd(at point: String) async throws {
        let scratch = Scratch("ctrkill")
        let sn = try SnapshotterProcess(in: scratch)
        try sn.start(killAt: point)
        let containerd = try PrivateContainerd(in: scratch, snapshotterSocket: sn.socket)
        try containerd.start()
        let ss = ["snapshots", "--snapshotter", "strata"]
        var failed = false
        for step in [ss + ["prepare", "base-tmp"], ss + ["commit", "base", "base-tmp"], ss + ["prepare", "child", "base"]] {
            if try containerd.ctr(step).status != 0 { failed = true; break }
        }
        #expect(failed, "the crash point \(point) was not reached")
        _ = sn.waitForExit()
        try sn.start()
        // containerd's view (its own metadata) and the snapshotter's (keys are namespace/id/name).
        // containerd's proxy client reconnects with a back-off.
        var listed = try containerd.ctr(ss + ["ls"])
        for _ in 0..<100 where listed.status != 0 {
            usleep(100_000)
            listed = try containerd.ctr(ss + ["ls"])
        }
        #expect(listed.status == 0, "\(listed.stderr)")
        let containerdNames = Set(listed.stdout.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first.map(String.init) })
        let backendNames = try await sn.withClient { client in
            try await client.list(Request.list()) { response in
                var names = Set<String>()
                for try await message in response.messages {
                    for info in message.info { names.insert(String(info.name.split(separator: "/").last ?? "")) }
                }
                return names
            }
        }
        #expect(containerdNames == backendNames, "containerd: \(containerdNames), strata: \(backendNames)")
        containerd.stop()
        sn.stop()
        let check = try run(builtProgram("strata"), ["check", "--root", sn.root, "--run-root", sn.runRoot])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }
}
