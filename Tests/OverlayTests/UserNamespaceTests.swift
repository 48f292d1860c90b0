import DriverConformance
import Foundation
import GraphDriver
import IDShift
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Layers used by a container in a user namespace (container 0 -> host 100000), in both flows:
/// shifted on disk (`updateLayerIDMap`, as `create-layer --uidmap` does) and presented by an
/// idmapped mount (`get` with mappings). Real overlay and idmapped mounts, the real chown walk;
/// the container's processes are stood in for by children that `setresuid` (`setpriv`).
@Suite("User namespaces", .serialized, needsRoot)
struct UserNamespaceTests {
    static func mapping(_ host: UInt32) -> IDMappings {
        IDMappings(uidMap: [IDMap(containerID: 0, hostID: host, size: 65536)],
                   gidMap: [IDMap(containerID: 0, hostID: host, size: 65536)])
    }

    static let mapped = mapping(100_000)

    /// A store whose root others may traverse (as `/var/lib` is), with a driver whose shifter is
    /// the real chown walk and idmapped mounts.
    /// With `copy`, a child's remap copies its parents' owners into `diff1` (the path kernels
    /// without idmapped lowers take); else mounts present the parents idmapped.
    private func store(copy: Bool = false) throws -> (TemporaryStore, OverlayDriver) {
        let store = try TemporaryStore()
        chmod(store.root.string, 0o711)
        let driver = try OverlayDriver(home: store.home, runHome: store.runHome,
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                       shifter: LayerShifter(home: store.home))
        driver.shiftsParentsByCopy = copy
        return (store, driver)
    }

    /// Runs `script` as `uid` in `directory` (entered as root first): a container's process
    /// does not traverse the host's path to its root, it starts inside.
    private func run(_ script: String, as uid: UInt32, in directory: FilePath) throws {
        try sh("cd '\(directory)' && exec setpriv --reuid=\(uid) --regid=\(uid) --clear-groups /bin/sh -c '\(script)'")
    }

    /// Whether `script` run as `uid` succeeds.
    private func succeeds(_ script: String, as uid: UInt32) -> Bool {
        (try? sh(script, as: uid)) != nil
    }

    /// An image layer `base`: files of several owners, a hard link, setuid, a capability, an ACL.
    private func makeBase(_ driver: OverlayDriver) throws {
        try driver.create(try LayerID("base"), parent: nil, options: CreateOptions())
        try sh("""
            set -e; cd '\(driver.home.appending("base/diff"))'
            mkdir -p usr/bin etc srv; chmod 755 . usr usr/bin etc srv
            printf 'gunzip data' > usr/bin/gunzip; ln usr/bin/gunzip usr/bin/gzip-link
            printf 'passwd' > etc/passwd; printf 'tool' > usr/bin/tool; printf 'gone' > srv/gone
            chown 1000:1000 etc/passwd; chmod 4755 usr/bin/tool; setcap cap_net_raw+ep usr/bin/gunzip
            setfacl -m u:1002:r etc/passwd
            """)
    }

    /// Owners of `names` under `root` as `uid:gid` lines.
    private func owners(_ root: FilePath, _ names: [String]) throws -> String {
        try sh("cd '\(root)' && stat -c '%u:%g' " + names.map { "'\($0)'" }.joined(separator: " "))
    }

    @Test("a layer mounted with mappings: its root traverses to merged and owns /, others are kept out, every file shifted")
    func idmappedContainer() throws {
        let (store, driver) = try store()
        defer { store.destroy() }
        try makeBase(driver)
        let c = try LayerID("c")
        try driver.createReadWrite(c, parent: try LayerID("base"), options: CreateOptions())
        let merged = try driver.get(c, options: MountOptions(idMappings: Self.mapped))
        defer { try? driver.put(c) }

        #expect(try sh("stat -c %a '\(store.home)'") == "711\n")
        let acl = try sh("getfacl -n --omit-header '\(store.home.appending("c"))'")
        #expect(acl.contains("user:100000:--x") && acl.contains("mask::--x") && acl.contains("group::---")
                && acl.contains("other::---"), "\(acl)")
        // The mapped root reaches merged (crun makes it private from inside the namespace) but
        // cannot list the layer's directory; another uid cannot even reach merged.
        #expect(succeeds("stat '\(merged)/.' >/dev/null", as: 100_000))
        #expect(!succeeds("ls '\(store.home.appending("c"))'", as: 100_000))
        #expect(!succeeds("stat '\(merged)/.' >/dev/null", as: 100_001))
        #expect(!succeeds("ls '\(store.home.appending("base/diff"))'", as: 100_000))

        // The container's / is its own, and every name of every hard link shows shifted.
        #expect(try owners(merged, [".", "usr/bin/gunzip", "usr/bin/gzip-link", "etc/passwd"])
                == "100000:100000\n100000:100000\n100000:100000\n101000:101000\n")
        try sh("touch '\(merged)/newtop' && mkdir '\(merged)/home1000'", as: 100_000)
        #expect(try owners(store.home.appending("c/diff"), [".", "newtop"]) == "100000:100000\n100000:100000\n")
        #expect(try driver.idMappings(of: c) == Self.mapped)
        // On disk the image is untouched.
        #expect(try owners(store.home.appending("base/diff"), ["usr/bin/gunzip"]) == "0:0\n")
    }

    @Test("diff of an idmapped container layer carries container owners; a whiteout made by host root is kept")
    func idmappedDiffOwners() throws {
        let (store, driver) = try store()
        defer { store.destroy() }
        try makeBase(driver)
        let c = try LayerID("c")
        try driver.createReadWrite(c, parent: try LayerID("base"), options: CreateOptions())
        let merged = try driver.get(c, options: MountOptions(idMappings: Self.mapped))
        try sh("mkdir '\(merged)/srv/u'; chmod 777 '\(merged)/srv/u'", as: 100_000)
        try run("echo 1 > one", as: 100_001, in: merged.appending("srv/u"))
        try run("echo k > kilo", as: 101_000, in: merged.appending("srv/u"))
        try sh("rm '\(merged)/srv/gone'")  // host root: overlayfs makes the whiteout as the mounter, 0:0
        try driver.put(c)
        #expect(try owners(store.home.appending("c/diff"), ["srv/gone"]) == "0:0\n")
        let tar = store.root.appending("c.tar")
        let fd = try FileDescriptor.open(tar, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        _ = try driver.diff(c, parent: try LayerID("base"), to: fd, options: DiffOptions())
        try fd.close()
        let listing = try sh("tar -tvf '\(tar)' --numeric-owner | awk '{print $2, $6}' | sort -k2")
        #expect(listing.contains("0/0 srv/u/\n") && listing.contains("1/1 srv/u/one\n") && listing.contains("1000/1000 srv/u/kilo\n")
                && listing.contains(" srv/.wh.gone\n"), "\(listing)")
        #expect(!listing.contains("10000"), "host IDs in the tar: \(listing)")
        // The layer remaps from this state (its files are at 100000, the whiteout at host 0).
        try driver.updateLayerIDMap(c, toContainer: .identity, toHost: Self.mapping(200_000), mountLabel: nil)
        #expect(try owners(store.home.appending("c/diff"), ["srv/u/one", "srv/gone"]) == "200001:200001\n0:0\n")
        let again = try driver.get(c, options: MountOptions())
        #expect(try owners(again, ["usr/bin/gunzip", "usr/bin/gzip-link", "srv/u/kilo"]) == "200000:200000\n200000:200000\n201000:201000\n")
        try driver.put(c)
    }

    @Test("shifting a child layer (parents idmapped, or copied as metadata into diff1): changes, diff and diff-size show only later writes",
          arguments: [false, true])
    func shiftedChild(copy: Bool) throws {
        let (store, driver) = try store(copy: copy)
        defer { store.destroy() }
        try makeBase(driver)
        let c = try LayerID("c"), base = try LayerID("base")
        try driver.createReadWrite(c, parent: base, options: CreateOptions())
        try driver.updateLayerIDMap(c, toContainer: .identity, toHost: Self.mapped, mountLabel: nil)
        let diff1 = store.home.appending("c/diff1")
        if copy {
            // Metadata only: the copy's regular files are metacopy files holding no data blocks.
            #expect(try sh("getfattr --absolute-names -n trusted.overlay.metacopy '\(diff1)/usr/bin/gunzip' >/dev/null && stat -c %b '\(diff1)/usr/bin/gunzip'") == "0\n")
        } else {
            #expect(!FileManager.default.fileExists(atPath: diff1.string))
        }
        #expect(try driver.changes(c, parent: base).isEmpty)
        #expect(try sh("find '\(store.home.appending("c/diff"))' | wc -l") == "1\n")
        #expect(try driver.diffSize(c, parent: base) == 0)

        // The copy used as a lower shows the base's data with the copy's owners (kernel check);
        // without a copy, the idmapped base shows the same.
        let merged = try driver.get(c, options: MountOptions())
        #expect(try sh("cat '\(merged)/usr/bin/gunzip' '\(merged)/usr/bin/gzip-link'") == "gunzip datagunzip data")
        #expect(try owners(merged, [".", "usr/bin/gunzip", "usr/bin/gzip-link", "etc/passwd", "usr/bin/tool"])
                == "100000:100000\n100000:100000\n100000:100000\n101000:101000\n100000:100000\n")
        #expect(try sh("stat -c %a '\(merged)/usr/bin/tool'") == "4755\n")
        #expect(try sh("getfacl -n --omit-header '\(merged)/etc/passwd'").contains("user:101002:r--"))
        #expect(try sh("getcap '\(merged)/usr/bin/gunzip'").contains("cap_net_raw=ep"))
        #expect(!succeeds("stat '\(merged)/.' >/dev/null", as: 100_001))
        #expect(succeeds("stat '\(merged)/.' >/dev/null", as: 100_000))
        try sh("echo new > '\(merged)/srv/new'", as: 100_000)
        try sh("chmod 600 '\(merged)/etc/passwd'")  // a metadata-only copy-up into the layer's diff
        // On a metacopy mount a renamed directory is a redirect in diff: its files are below.
        if copy { try sh("mv '\(merged)/usr/bin' '\(merged)/usr/sbin'") }
        try driver.put(c)

        let changes = try driver.changes(c, parent: base)
        // (Read by comparing mounts, which ignores a directory's own mtime, like other naive diffs here.)
        #expect(Set(changes.map(\.path)) == (copy ? ["/srv/new", "/etc/passwd", "/usr/bin", "/usr/sbin",
                                                      "/usr/sbin/gunzip", "/usr/sbin/gzip-link", "/usr/sbin/tool"]
                                               : ["/srv", "/srv/new", "/etc/passwd"]), "\(changes)")
        let tar = store.root.appending("c.tar")
        let fd = try FileDescriptor.open(tar, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
        _ = try driver.diff(c, parent: base, to: fd, options: DiffOptions())
        try fd.close()
        let listing = try sh("tar -tvf '\(tar)' --numeric-owner | awk '{print $1, $2, $6}' | sort -k3")
        #expect(listing.contains("-rw------- 1000/1000 etc/passwd\n") && listing.contains("-rw-r--r-- 0/0 srv/new\n")
                && !listing.contains("usr/bin/") && !listing.contains("10000"), "\(listing)")
        if copy {
            #expect(listing.contains("-rwsr-xr-x 0/0 usr/sbin/tool\n") && listing.contains(" usr/.wh.bin\n"), "\(listing)")
            #expect(try sh("tar -xOf '\(tar)' usr/sbin/gunzip") == "gunzip data")
        }
        // The metacopy file's data comes from the layer that holds it.
        #expect(try sh("tar -xOf '\(tar)' etc/passwd") == "passwd")
        // Its ACL names the container's user again (host 101002 on the mount).
        let out = store.root.appending("out")
        try sh("mkdir '\(out)' && tar --acls -xf '\(tar)' -C '\(out)' etc/passwd")
        #expect(try sh("getfacl -n --omit-header '\(out)/etc/passwd'").contains("user:1002:r--"))
        if copy {
            // The renamed file's capability, v3 for host root 100000 in the copy, is the
            // container root's again: v2 in the tar.
            try sh("tar --xattrs --xattrs-include='security.*' -xf '\(tar)' -C '\(out)' usr/sbin/gunzip")
            let caps = try sh("getcap '\(out)/usr/sbin/gunzip'")
            #expect(caps.contains("cap_net_raw=ep") && !caps.contains("rootid"), "\(caps)")
        }
    }

    @Test("remap works from every state: chained 0 -> 100000 -> 200000 and back, after a mount with mappings",
          arguments: [false, true])
    func remapChains(copy: Bool) throws {
        let (store, driver) = try store(copy: copy)
        defer { store.destroy() }
        try makeBase(driver)
        let c = try LayerID("c"), base = try LayerID("base")
        try driver.createReadWrite(c, parent: base, options: CreateOptions())
        for host: UInt32 in [100_000, 200_000, 0] {
            let target = host == 0 ? IDMappings.identity : Self.mapping(host)
            try driver.updateLayerIDMap(c, toContainer: try driver.idMappings(of: c), toHost: target, mountLabel: nil)
            #expect(try driver.idMappings(of: c) == target)
            let merged = try driver.get(c, options: MountOptions())
            #expect(try owners(merged, [".", "usr/bin/gzip-link", "etc/passwd"])
                    == "\(host):\(host)\n\(host):\(host)\n\(host + 1000):\(host + 1000)\n")
            try driver.put(c)
        }
        // diff and, when copying, one diff1 made by the first remap and shifted in place since.
        #expect(try sh("ls '\(store.home.appending("c"))' | grep -c '^diff'") == (copy ? "2\n" : "1\n"))

        // A layer whose own files an idmapped mount shifted remaps, and an idmapped mount of a
        // shifted layer with other mappings composes the two.
        let d = try LayerID("d")
        try driver.createReadWrite(d, parent: base, options: CreateOptions())
        _ = try driver.get(d, options: MountOptions(idMappings: Self.mapped))
        try driver.put(d)
        try driver.updateLayerIDMap(d, toContainer: .identity, toHost: Self.mapping(300_000), mountLabel: nil)
        let view = try driver.get(d, options: MountOptions(idMappings: Self.mapping(400_000)))
        #expect(try owners(view, [".", "usr/bin/gunzip", "etc/passwd"]) == "400000:400000\n400000:400000\n401000:401000\n")
        try driver.put(d)
        #expect(try driver.idMappings(of: d) == Self.mapping(400_000))
        #expect(try driver.check(repair: false).isClean)
        #expect(store.mounts().isEmpty, "\(store.mounts())")
    }
}
