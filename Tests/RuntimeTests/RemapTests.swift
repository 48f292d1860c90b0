import Foundation
import Testing

/// A container layer used in one user namespace, then moved to another (`strata remap` to
/// container 0 → host 200000) and run there: what the first container made keeps its container
/// owners, in both flows.
extension RuntimeTests {
    @Test("a used container layer remapped to 0:200000:65536 runs there with the same container owners",
          arguments: OCIRuntime.allCases, [Flow.shifted, .idmapped])
    func remapAfterUse(runtime: OCIRuntime, flow: Flow) throws {
        try #require(runtime.isInstalled, "\(runtime.path) is missing (Debian package \(runtime.rawValue))")
        let store = try storeWithImage()
        var container = TestContainer(store: store, name: "r-\(runtime)-\(flow)", flow: flow, runtime: runtime)
        try container.prepare(image: "image")
        defer { _ = try? store.strata(["unmount", container.name]) }
        let first = try container.run()
        try #require(first.status == 0, "\(runtime) run: \(first)")
        try store.mustStrata(["unmount", container.name])

        // Remapped unmounted, from whichever state the flow left it in.
        let moved = UserNamespace.mapping(at: UserNamespace.remappedBase)
        let remap = try store.strata(["remap", container.name, "--uidmap", moved, "--gidmap", moved])
        try #require(remap.status == 0, "strata remap \(container.name) to \(moved): \(remap)")
        try container.mount(flow == .idmapped ? ["--uidmap", moved, "--gidmap", moved] : [])

        // On the host, the merged tree and the layer's own files are owned at the new base.
        let base = UserNamespace.remappedBase
        let upper = try container.upperDir()
        for (path, owner) in BusyboxImage.checkedOwners + ContainerScript.created {
            #expect(hostOwner(container.merged + path) == owner.shifted(by: base),
                    "on the host in merged \(path): \(describe(hostOwner(container.merged + path)))")
        }
        for (path, owner) in ContainerScript.created {
            #expect(hostOwner(upper + path) == owner.shifted(by: base), "on disk \(upper + path): \(describe(hostOwner(upper + path)))")
        }

        // Inside the new user namespace: the same container owners as before, deletions kept.
        let second = try container.run(script: ContainerScript.listing(), hostBase: base)
        try #require(second.status == 0, "\(runtime) run after the remap: \(second)")
        let report = ContainerScript.Report(second.stdout)
        #expect(report.id.hasPrefix("uid=0(root) gid=0(root)"), "id printed \(report.id)")
        for (path, owner) in BusyboxImage.checkedOwners + ContainerScript.created {
            #expect(report.owners[path] == owner, "inside \(path): \(describe(report.owners[path]))")
        }
        #expect(report.present.isEmpty, "deleted files are back: \(report.present)")

        // The exported diff still carries the container's IDs.
        let tarPath = store.dir + "/\(container.name).tar"
        try store.mustStrata(["diff", container.name, "-o", tarPath])
        let listing = parseTarListing(try mustRun("/bin/tar", ["-tvf", tarPath, "--numeric-owner"]))
        for (path, owner) in ContainerScript.created {
            #expect(listing[String(path.dropFirst())] == owner, "exported \(path): \(describe(listing[String(path.dropFirst())]))")
        }
        try store.mustStrata(["unmount", container.name])
        #expect(store.leftoverMounts().isEmpty, "left mounted: \(store.leftoverMounts())")
    }
}
