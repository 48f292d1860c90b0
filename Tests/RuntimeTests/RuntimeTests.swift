import Foundation
import Testing

/// Real containers on Strata layers: runc and crun from Debian, rootful and in a user namespace
/// (container 0 → host 100000, 65536 IDs), with owners shifted on disk or by an idmapped mount.
/// Everything goes through the `strata` command line and the runtimes' own command lines.
@Suite("OCI runtimes on Strata layers", .serialized,
       .enabled(if: runningAsRoot, "needs root: overlay mounts, runtimes, chown"),
       .enabled(if: installed("/bin/busybox"), "needs /bin/busybox (Debian busybox-static) for the image"))
struct RuntimeTests {
    @Test("a container writes as uid 0, 1 and 1000; owners inside, on disk, in changes and in the exported tar",
          arguments: OCIRuntime.allCases, Flow.allCases)
    func containerLifecycle(runtime: OCIRuntime, flow: Flow) throws {
        try #require(runtime.isInstalled, "\(runtime.path) is missing (Debian package \(runtime.rawValue))")
        let store = try storeWithImage()
        var container = TestContainer(store: store, name: "c-\(runtime)-\(flow)", flow: flow, runtime: runtime)
        try container.prepare(image: "image")

        let result = try container.run()
        #expect(result.status == 0, "\(runtime) run: \(result)")
        let report = ContainerScript.Report(result.stdout)

        // Inside: the process is the container's root, every checked name (every name of both
        // hard-link groups, and `/`) has its image owner, and every write succeeded.
        #expect(report.id.hasPrefix("uid=0(root) gid=0(root)"), "id printed \(report.id)")
        for (path, owner) in BusyboxImage.checkedOwners {
            #expect(report.owners[path] == owner, "inside \(path): \(report.owners[path].map { "\($0)" } ?? "not listed")")
        }
        #expect(report.failed.isEmpty, "steps that failed: \(report.failed.sorted()); stderr: \(result.stderr)")
        #expect(report.ok == Set(ContainerScript.steps))
        for (path, owner) in ContainerScript.created {
            #expect(report.owners[path] == owner, "inside new \(path): \(report.owners[path].map { "\($0)" } ?? "missing")")
        }

        // On disk: the new files in the layer's upper directory, owned by host IDs.
        let upper = try container.upperDir()
        for (path, owner) in ContainerScript.created {
            #expect(hostOwner(upper + path) == owner.shifted(by: flow.hostOffset),
                    "on disk \(upper + path): \(hostOwner(upper + path).map { "\($0)" } ?? "missing")")
        }

        // `strata changes`: only what the container did.
        let changes = try store.mustStrata(["changes", container.name])
        let changeLines = Set(changes.split(separator: "\n").map(String.init))
        #expect(changeLines == expectedChanges, "strata changes printed \(changeLines.count) lines: \(changes.prefix(600))")

        // `strata diff | tar -tv --numeric-owner`: container IDs, and the whiteouts.
        let tarPath = store.dir + "/\(container.name).tar"
        try store.mustStrata(["diff", container.name, "-o", tarPath])
        let listing = parseTarListing(try mustRun("/bin/tar", ["-tvf", tarPath, "--numeric-owner"]))
        for (path, owner) in ContainerScript.created {
            let entry = String(path.dropFirst())
            #expect(listing[entry] == owner, "exported \(entry): \(listing[entry].map { "\($0)" } ?? "missing")")
        }
        for path in ContainerScript.deleted {
            let whiteout = (path as NSString).deletingLastPathComponent.dropFirst() + "/.wh." + (path as NSString).lastPathComponent
            #expect(listing[String(whiteout)] != nil, "no whiteout \(whiteout) in the exported tar")
        }
        #expect(listing.count <= expectedChanges.count + 2,
                "the exported tar holds \(listing.count) entries for \(expectedChanges.count) changes")

        try store.mustStrata(["unmount", container.name])
        #expect(store.mountPoints().isEmpty, "left mounted: \(store.mountPoints())")
        #expect(try runtime.listed(stateRoot: store.runtimeState).isEmpty)
    }

    /// What `strata changes` must print for the container script (`A` added, `C` changed, `D`
    /// deleted): its four new files, the two deletions, and the directories they are in.
    let expectedChanges: Set<String> = [
        "A /newtop",
        "C /tmp", "A /tmp/by-root", "A /tmp/by-daemon",
        "C /home", "C /home/user", "A /home/user/by-user", "D /home/user/old-note",
        "C /etc", "D /etc/to-delete",
    ]
}
