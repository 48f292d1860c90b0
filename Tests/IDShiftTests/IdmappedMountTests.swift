import Foundation
import GraphDriver
import IDShift
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Idmapped mounts, as root: owners shown shifted through the mount, nothing changed on disk.
@Suite("Idmapped mounts", .serialized, needsRoot)
struct IdmappedMountTests {
    @Test("this kernel idmaps ext4 and tmpfs, not procfs")
    func probe() throws {
        let scratch = ScratchDirectory()
        #expect(IdmappedMount.supportsIdmappedMounts(at: FilePath(scratch.path)))
        let tmpfs = scratch.directory("tmpfs")
        try sh("mount -t tmpfs strata-test \(tmpfs)")
        defer { _ = try? sh("umount -l \(tmpfs)") }
        #expect(IdmappedMount.supportsIdmappedMounts(at: FilePath(tmpfs)))
        #expect(!IdmappedMount.supportsIdmappedMounts(at: "/proc"))
        #expect(!IdmappedMount.supportsIdmappedMounts(at: "/nonexistent"))
        #expect(ChownShifter().supportsShiftingAtMount(at: FilePath(scratch.path)))
    }

    @Test("files show the mapping's host owners through the mount; unmapped owners show as overflow")
    func shiftedOwners() throws {
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        let merged = scratch.directory("merged")
        try sh("""
            set -e; chmod 755 \(scratch.path); cd \(layer); mkdir dir tmp; chmod 1777 tmp; touch dir/root-file user-file outside; ln -s dir/root-file link
            chown 0:0 . dir dir/root-file; chown 1000:1001 user-file; chown -h 33:34 link; chown 70000:70000 outside
            chmod 4755 dir/root-file
            """)
        let mappings = IDMappings(uidMap: try IDMap.parseList("0:100000:65536"), gidMap: try IDMap.parseList("0:200000:65536"))
        try IdmappedMount.makeIdmappedMount(source: FilePath(layer), target: FilePath(merged), mappings: mappings)
        defer { _ = try? sh("umount -l \(merged)") }

        let overflowUID = IDMap.overflowUserID(), overflowGID = IDMap.overflowGroupID()
        #expect(try owner(merged) == Owner(uid: 100_000, gid: 200_000, mode: 0o755))
        #expect(try owner(merged + "/dir/root-file") == Owner(uid: 100_000, gid: 200_000, mode: 0o4755))
        #expect(try owner(merged + "/user-file") == Owner(uid: 101_000, gid: 201_001, mode: 0o644))
        #expect(try owner(merged + "/link").uid == 100_033)
        #expect(try owner(merged + "/link").gid == 200_034)
        #expect(try owner(merged + "/outside") == Owner(uid: overflowUID, gid: overflowGID, mode: 0o644))
        // On disk nothing changed.
        #expect(try owner(layer + "/user-file") == Owner(uid: 1000, gid: 1001, mode: 0o644))
        // A file made through the mount by host user 100005, group 200006 is stored as 5:6; host
        // root has no place in the mapping and cannot create files there.
        try sh("setpriv --reuid=100005 --regid=200006 --clear-groups touch \(merged)/tmp/made-through")
        #expect(try owner(layer + "/tmp/made-through") == Owner(uid: 5, gid: 6, mode: 0o644))
        #expect(throws: (any Error).self) { try sh("touch \(merged)/tmp/by-host-root") }
    }

    @Test("a tree shifted in place reads exactly as the same tree through an idmapped mount, and shifts back")
    func walkAgreesWithTheKernel() throws {
        let scratch = ScratchDirectory()
        let walked = scratch.directory("walked")
        let layer = scratch.directory("layer")
        let merged = scratch.directory("merged")
        // v2 capabilities (setcap, and a v3 with root ID 0, which the kernel stores as v2), ACLs,
        // setuid, symlinks, several owners.
        try sh("""
            set -e; cd \(walked); mkdir -p d/e; touch d/f s c3 d/e/g; ln -s d/f l; ln d/f d/hard
            chown 1000:1001 d/f; chown -h 5:6 l; chown 33:33 d/e d/e/g; chmod 4755 s; chmod 2755 d/e/g
            setfacl -m u:1002:rw,g:1003:r d/f; setfacl -d -m u:1004:rx,g:1005:r d
            setcap cap_net_raw+ep s; setfattr -n security.capability -v 0x010000030020000000000000000000000000000000000000 c3
            setfattr -n user.containers.override_stat -v '7:8:0644' d/e/g
            cp -a . \(layer)
            """)
        let original = try snapshot(walked)
        #expect(xattr(walked + "/c3", "security.capability")?.count == 20)
        let mappings = IDMappings(uidMap: try IDMap.parseList("0:100000:65536"), gidMap: try IDMap.parseList("0:200000:65536"))

        try ChownShifter().shift(tree: FilePath(walked), from: .identity, to: mappings)
        try IdmappedMount.makeIdmappedMount(source: FilePath(layer), target: FilePath(merged), mappings: mappings)
        defer { _ = try? sh("umount -l \(merged)") }
        // user.containers.override_stat is ours, not the kernel's: the mount shows it unchanged.
        let kernelView = try snapshot(merged).replacingOccurrences(of: "0x373a383a30363434", with: "0x3130303030373a3230303030383a30363434")
        #expect(try snapshot(walked) == kernelView)
        #expect(FileCapability.rootID(xattr(walked + "/s", "security.capability")!) == 100_000)

        try ChownShifter().shift(tree: FilePath(walked), from: mappings, to: .identity)
        #expect(try snapshot(walked) == original)
    }

    @Test("an identity mapping shows owners unchanged; a detached mount can be attached later")
    func identityAndDetached() throws {
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        let merged = scratch.directory("merged")
        try sh("touch \(layer)/f && chown 1234:5678 \(layer)/f")
        let detached = try IdmappedMount.detachedIdmappedMount(source: FilePath(layer), mappings: .identity)
        try detached.moveMount(to: FilePath(merged))
        // The descriptor keeps the mount busy: close it before unmounting.
        detached.closeQuietly()
        defer { _ = try? sh("umount -l \(merged)") }
        #expect(try owner(merged + "/f").uid == 1234)
        #expect(try owner(merged + "/f").gid == 5678)
    }

    @Test("maps the kernel refuses and sources that are not there give clear errors")
    func errors() throws {
        let scratch = ScratchDirectory()
        let target = scratch.directory("merged")
        let overlapping = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 10),
                                              IDMap(containerID: 5, hostID: 200_000, size: 10)])
        do {
            try IdmappedMount.makeIdmappedMount(source: FilePath(scratch.path), target: FilePath(target), mappings: overlapping)
            Issue.record("overlapping maps should be refused")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.description.hasPrefix("make user namespace: the kernel refused the maps uid 0:100000:10,5:200000:10"))
        }
        do {
            try IdmappedMount.makeIdmappedMount(source: "/nonexistent/layer", target: FilePath(target), mappings: .identity)
            Issue.record("a missing source should be an error")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.path == "/nonexistent/layer")
        }
        #expect(!Mounts.isMountPoint(FilePath(target)))
    }
}
