import Foundation
import Testing

/// A user's view of a container layer in a user namespace (container 0 -> host 100000): what
/// `strata changes` and `strata diff | tar -tvn --numeric-owner` show, in both flows.
@Suite("strata with user namespaces", .serialized, .enabled(if: geteuid() == 0, "needs root to mount overlays"))
struct UserNamespaceCLITests {
    static let maps = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]

    /// Runs `script` in `directory` as host `uid` (what a container process of that uid is).
    private func write(_ script: String, as uid: UInt32, in directory: String) throws {
        let result = try runProgram("/bin/sh", ["-c", "cd '\(directory)' && exec setpriv --reuid=\(uid) --regid=\(uid) --clear-groups /bin/sh -c '\(script)'"])
        #expect(result.status == 0, "\(result.output)")
    }

    /// `strata diff ID` listed by GNU tar with numeric owners: `owner path` lines.
    private func tarListing(_ store: Store, _ id: String) throws -> String {
        let tar = store.root + "/\(id).tar"
        #expect(try strata(store, ["diff", id, "-o", tar]).status == 0)
        return try runProgram("/bin/sh", ["-c", "tar -tvnf '\(tar)' --numeric-owner | awk '{print $2, $6}'"]).output
    }

    private func base(_ store: Store) throws {
        #expect(try strata(store, ["create-layer", "base"]).status == 0)
        let tar = try tarOf(["etc/hostname": "strata\n", "srv/old": "old\n", "usr/bin/tool": "tool\n"])
        #expect(try strata(store, ["apply-diff", "base", "-"], stdin: tar).status == 0)
    }

    @Test("create-layer --uidmap (shifted on disk): changes and diff hold only the container's writes, with its owners")
    func shiftedFlow() throws {
        let store = Store()
        try base(store)
        let created = try strata(store, ["create-layer", "app", "--parent", "base", "--rw"] + Self.maps)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try strata(store, ["changes", "app"]).stdout == "")
        let merged = try strata(store, ["mount", "app"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try runProgram("/usr/bin/stat", ["-c", "%u", merged, merged + "/etc/hostname"]).output == "100000\n100000\n")
        try write("echo hi > /dev/null; mkdir srv/mine && chmod 777 srv/mine && echo a > srv/mine/a && rm srv/old", as: 100_000, in: merged)
        try write("echo b > b", as: 101_000, in: merged + "/srv/mine")
        #expect(try strata(store, ["unmount", "app"]).status == 0)
        let changes = try strata(store, ["changes", "app"]).stdout
        // Only the container's writes: the image's files are shown shifted, never copied in.
        #expect(Set(changes.split(separator: "\n")) == ["C /srv", "A /srv/mine", "A /srv/mine/a", "A /srv/mine/b", "D /srv/old"], "\(changes)")
        let listing = try tarListing(store, "app")
        #expect(Set(listing.split(separator: "\n")).isSuperset(of: ["0/0 srv/mine/", "0/0 srv/mine/a", "1000/1000 srv/mine/b", "0/0 srv/.wh.old"])
                && !listing.contains("etc/") && !listing.contains("usr/") && !listing.contains("10000"), "\(listing)")
        #expect(try strata(store, ["remove", "app"]).status == 0)
    }

    @Test("mount --uidmap (idmapped): the container's / is its root's, and diff carries container owners")
    func idmappedFlow() throws {
        let store = Store()
        try base(store)
        #expect(try strata(store, ["create-layer", "app", "--parent", "base", "--rw"]).status == 0)
        let mounted = try strata(store, ["mount", "app"] + Self.maps)
        #expect(mounted.status == 0, "\(mounted.stderr)")
        let merged = mounted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try write("touch newtop && echo one > etc/one", as: 100_000, in: merged)
        #expect(try strata(store, ["unmount", "app"]).status == 0)
        let changes = try strata(store, ["changes", "app"]).stdout
        #expect(Set(changes.split(separator: "\n")) == ["A /newtop", "C /etc", "A /etc/one"], "\(changes)")
        let listing = try tarListing(store, "app")
        #expect(Set(listing.split(separator: "\n")) == ["0/0 etc/", "0/0 etc/one", "0/0 newtop"], "\(listing)")
        // Remapped afterwards from this state: the tar still carries container owners.
        #expect(try strata(store, ["remap", "app", "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536"]).status == 0)
        let remapped = try tarListing(store, "app")
        #expect(Set(remapped.split(separator: "\n")).isSuperset(of: ["0/0 etc/one", "0/0 newtop"]) && !remapped.contains("20000"),
                "\(remapped)")
        #expect(try strata(store, ["check"]).status == 0)
    }
}
