import Foundation
import Testing

/// Real containers on Strata layers: runc and crun from Debian, rootful and in a user namespace
/// (container 0 → host 100000, 65536 IDs), with owners shifted on disk or by an idmapped mount.
/// Everything goes through the `strata` command line and the runtimes' own command lines. One
/// suite, serialized: the eight-at-once test must not share the two cores with the others.
@Suite("OCI runtimes on Strata layers", .serialized,
       .enabled(if: runningAsRoot, "needs root: overlay mounts, runtimes, chown"),
       .enabled(if: installed(BusyboxImage.busybox), "needs /bin/busybox (Debian busybox-static) for the image"))
struct RuntimeTests {
    @Test("a container writes as uid 0, 1 and 1000; owners inside, on disk, in changes and in the exported tar",
          arguments: OCIRuntime.allCases, Flow.allCases)
    func containerLifecycle(runtime: OCIRuntime, flow: Flow) throws {
        try #require(runtime.isInstalled, "\(runtime.path) is missing (Debian package \(runtime.rawValue))")
        let store = try storeWithImage()
        var container = TestContainer(store: store, name: "c-\(runtime)-\(flow)", flow: flow, runtime: runtime)
        try container.prepare(image: "image")
        defer { _ = try? store.strata(["unmount", container.name]) }

        // Before the container runs: the layer has no changes of its own, and on the host the
        // merged tree shows every checked name with its host owner.
        let before = try store.mustStrata(["changes", container.name])
        #expect(before.isEmpty, "changes of the new layer: \(before.split(separator: "\n").count) lines: \(before.prefix(300))")
        checkOwners(flow: flow, offset: flow.hostOffset, where: "on the host in merged") { hostOwner(container.merged + $0) }

        let result = try container.run()
        try #require(result.status == 0, "\(runtime) run: \(result)")
        let report = ContainerScript.Report(result.stdout)

        // Inside: the process is the container's root, every checked name (every name of both
        // hard-link groups, and `/`) has its image owner, and every write succeeded.
        #expect(report.id.hasPrefix("uid=0(root) gid=0(root)"), "id printed \(report.id)")
        // The runtime gave the container its own cgroup (crun: in the v2 hierarchy, `0::/ID`).
        let ownCgroup = runtime == .crun ? "0::/" + container.runtimeID : "/" + container.runtimeID
        #expect(report.cgroups.contains { $0.hasSuffix(ownCgroup) }, "cgroups inside: \(report.cgroups)")
        checkOwners(flow: flow, offset: 0, where: "inside") { report.owners[$0] }
        #expect(report.ok.contains("newtop"), "touch /newtop as the container's root: \(result.stderr)")
        #expect(report.ok == Set(ContainerScript.steps), "failed: \(report.failed.sorted()); \(result.stderr)")

        // The new files: inside with the container's owners, in the upper directory with host owners.
        let upper = try container.upperDir()
        for (path, owner) in ContainerScript.created {
            #expect(report.owners[path] == owner, "inside \(path): \(describe(report.owners[path]))")
            #expect(hostOwner(upper + path) == owner.shifted(by: flow.hostOffset),
                    "on disk \(upper + path): \(describe(hostOwner(upper + path)))")
        }

        // `strata changes`: only what the container did.
        let changes = try store.mustStrata(["changes", container.name])
        let lines = Set(changes.split(separator: "\n").map(String.init))
        #expect(lines == expectedChanges, "strata changes printed \(lines.count) lines: \(changes.prefix(600))")

        // `strata diff | tar -tv --numeric-owner`: container IDs, the whiteouts, nothing else.
        let tarPath = store.dir + "/\(container.name).tar"
        try store.mustStrata(["diff", container.name, "-o", tarPath])
        let listing = parseTarListing(try mustRun("/bin/tar", ["-tvf", tarPath, "--numeric-owner"]))
        for (path, owner) in ContainerScript.created {
            let entry = String(path.dropFirst())
            #expect(listing[entry] == owner, "exported \(entry): \(describe(listing[entry]))")
        }
        for path in ContainerScript.deleted {
            let whiteout = (path as NSString).deletingLastPathComponent.dropFirst() + "/.wh." + (path as NSString).lastPathComponent
            #expect(listing[String(whiteout)] != nil, "no whiteout \(whiteout) in the exported tar")
        }
        let extra = Set(listing.keys).subtracting(expectedTarEntries)
        #expect(extra.isEmpty, "exported entries the container did not make: \(extra.sorted().prefix(20))")

        try store.mustStrata(["unmount", container.name])
        #expect(store.leftoverMounts().isEmpty, "left mounted: \(store.leftoverMounts())")
        #expect(try runtime.listed(stateRoot: store.runtimeState).isEmpty)
    }

    /// Checks the owners of the image's checked names as `lookup` sees them (container IDs plus
    /// `offset`): `/`, every name of both hard-link groups, and the rest.
    func checkOwners(flow: Flow, offset: UInt32, where place: String, _ lookup: (String) -> Owner?) {
        for (path, owner) in BusyboxImage.checkedOwners {
            #expect(lookup(path) == owner.shifted(by: offset), "\(place) \(path): \(describe(lookup(path)))")
        }
    }

    /// What `strata changes` must print for the container script (`A` added, `C` changed, `D`
    /// deleted): its four new files, the two deletions, and the directories they are in.
    let expectedChanges: Set<String> = [
        "A /newtop",
        "C /tmp", "A /tmp/by-root", "A /tmp/by-daemon",
        "C /home", "C /home/user", "A /home/user/by-user", "D /home/user/old-note",
        "C /etc", "D /etc/to-delete",
    ]

    /// The entries of the exported tar: the same, with whiteouts for the deletions.
    let expectedTarEntries: Set<String> = [
        "newtop", "tmp", "tmp/by-root", "tmp/by-daemon", "home", "home/user", "home/user/by-user",
        "home/user/.wh.old-note", "etc", "etc/.wh.to-delete",
    ]
}

func describe(_ owner: Owner?) -> String { owner.map { "\($0)" } ?? "missing" }
