import Foundation
import GraphDriver
import IDShift
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shifts of real trees, as root: owners, modes, capabilities, ACLs, override_stat, hard links,
/// symlinks, long names, deep and wide trees, and failures that leave the tree as it was.
@Suite("Walk", .serialized, needsRoot)
struct WalkTests {
    let from = mapping("0:100000:65536")
    let to = mapping("0:200000:65536")

    @Test("owners go through the old mapping to the container and through the new one to the host")
    func owners() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree)
            mkdir -p a/b; touch a/b/f a/g top fifo-target; mkfifo a/fifo; mknod a/null c 1 3
            chown 100000:100000 . a a/b; chown 101000:101001 a/b/f; chown 165535:100005 a/g
            chown 100033:165535 top a/fifo a/null; chown 100000:100000 fifo-target
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(try owner(tree).uid == 200_000)
        #expect(try owner(tree + "/a/b").gid == 200_000)
        #expect(try owner(tree + "/a/b/f") == Owner(uid: 201_000, gid: 201_001, mode: 0o644))
        #expect(try owner(tree + "/a/g") == Owner(uid: 265_535, gid: 200_005, mode: 0o644))
        #expect(try owner(tree + "/top") == Owner(uid: 200_033, gid: 265_535, mode: 0o644))
        #expect(try owner(tree + "/a/fifo").uid == 200_033)
        #expect(try owner(tree + "/a/null").gid == 265_535)
        #expect(report.entriesVisited == 9)
        #expect(report.ownersChanged == 9)

        // And back down to the identity, then up again through several ranges.
        try ChownShifter().shift(tree: FilePath(tree), from: to, to: .identity)
        #expect(try owner(tree + "/a/b/f") == Owner(uid: 1000, gid: 1001, mode: 0o644))
        let ranges = mapping("0:300000:1000,1000:400000:64536")
        try ChownShifter().shift(tree: FilePath(tree), from: .identity, to: ranges)
        #expect(try owner(tree + "/a/b/f") == Owner(uid: 400_000, gid: 400_001, mode: 0o644))
        #expect(try owner(tree + "/a/g") == Owner(uid: 400_000 + 64535, gid: 300_005, mode: 0o644))
        #expect(try owner(tree + "/top") == Owner(uid: 300_033, gid: 464_535, mode: 0o644))
    }

    @Test("the same mapping on both sides changes nothing, and an unchanged owner is not chowned")
    func unchanged() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("cd \(tree) && touch f && chown 100000:100000 . f && chmod 4755 f")
        let same = try ChownShifter().shift(tree: FilePath(tree), from: from, to: from)
        #expect(same.entriesVisited == 0)
        // 0:100000:10 to 5:100005:10 leaves 100000 where it is (container 0 → 0 … no: 100000 → 0 → nothing)
        let shifted = try ChownShifter().shift(tree: FilePath(tree), from: mapping("0:100000:65536"),
                                               to: mapping("0:100000:1,1:500000:65535"))
        #expect(shifted.entriesVisited == 2)
        #expect(shifted.ownersChanged == 0)
        #expect(shifted.modesRestored == 0)
        #expect(try owner(tree + "/f") == Owner(uid: 100_000, gid: 100_000, mode: 0o4755))
    }

    @Test("setuid and setgid bits that chown clears are put back")
    func setuidSetgid() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree); mkdir sgid-dir
            touch suid sgid both sgid-noexec plain
            chown 100000:100000 . suid sgid both sgid-noexec plain sgid-dir
            chmod 4755 suid; chmod 2755 sgid; chmod 6711 both; chmod 2644 sgid-noexec; chmod 2775 sgid-dir
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(try owner(tree + "/suid") == Owner(uid: 200_000, gid: 200_000, mode: 0o4755))
        #expect(try owner(tree + "/sgid") == Owner(uid: 200_000, gid: 200_000, mode: 0o2755))
        #expect(try owner(tree + "/both") == Owner(uid: 200_000, gid: 200_000, mode: 0o6711))
        #expect(try owner(tree + "/sgid-noexec") == Owner(uid: 200_000, gid: 200_000, mode: 0o2644))
        #expect(try owner(tree + "/sgid-dir") == Owner(uid: 200_000, gid: 200_000, mode: 0o2775))
        #expect(try owner(tree + "/plain") == Owner(uid: 200_000, gid: 200_000, mode: 0o644))
        #expect(report.modesRestored == 4)
    }

    @Test("security.capability survives the chown; a v3 capability's root ID is remapped")
    func capabilities() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        // v3: revision 3 + effective, permitted CAP_NET_RAW|CAP_NET_BIND_SERVICE, rootid 100000.
        let v3hex = "0x01000003" + "00240000" + "00000000" + "00000000" + "00000000" + "a0860100"
        try sh("""
            set -e; cd \(tree); touch v2 v3 v3-suid
            chown 100000:100000 . v2 v3 v3-suid; chmod 4755 v3-suid
            setcap cap_net_raw,cap_sys_admin+ep v2
            setfattr -n security.capability -v \(v3hex) v3
            setfattr -n security.capability -v \(v3hex) v3-suid
            """)
        let v2Before = try #require(xattr(tree + "/v2", "security.capability"))
        let v3Before = try #require(xattr(tree + "/v3", "security.capability"))
        #expect(v2Before.count == 20)
        #expect(v3Before.count == 24)
        #expect(FileCapability.rootID(v3Before) == 100_000)

        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(xattr(tree + "/v2", "security.capability") == v2Before)
        let v3After = try #require(xattr(tree + "/v3", "security.capability"))
        #expect(Array(v3After[..<20]) == Array(v3Before[..<20]))
        #expect(Array(v3After[20...]) == [0x40, 0x0D, 0x03, 0x00])  // 200000 little-endian
        #expect(FileCapability.rootID(v3After) == 200_000)
        #expect(xattr(tree + "/v3-suid", "security.capability") == v3After)
        #expect(try owner(tree + "/v3-suid") == Owner(uid: 200_000, gid: 200_000, mode: 0o4755))
        #expect(try sh("getcap \(tree)/v2").contains("cap_net_raw,cap_sys_admin=ep"))
        #expect(report.capabilitiesRewritten == 3)
    }

    @Test("named entries of access and default ACLs are remapped, others kept")
    func acls() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree); mkdir dir; touch file
            chown 101000:101000 . dir file
            setfacl -m u:101001:rw,u:100007:r,g:100100:r,g:165535:rwx file
            setfacl -m u:101002:rx dir
            setfacl -d -m u:101003:rwx,g:100200:rx dir
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(namedACLEntries(tree + "/file") == ["u:200007:4", "u:201001:6", "g:200100:4", "g:265535:7"])
        #expect(namedACLEntries(tree + "/dir") == ["u:201002:5"])
        #expect(namedACLEntries(tree + "/dir", "system.posix_acl_default") == ["u:201003:7", "g:200200:5"])
        #expect(try owner(tree + "/file") == Owner(uid: 201_000, gid: 201_000, mode: 0o674))
        #expect(try sh("getfacl -n -p \(tree)/file | grep -c '^user:2010'") == "1\n")
        #expect(report.aclsRemapped == 3)
        // A file created in the directory inherits the remapped default ACL.
        try sh("touch \(tree)/dir/new")
        #expect(namedACLEntries(tree + "/dir/new") == ["u:201003:7", "g:200200:5"])
    }

    @Test("user.containers.override_stat IDs are updated, mode and type kept")
    func overrideStat() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree); touch f g; chown 100000:100000 . f g
            setfattr -n user.containers.override_stat -v '100005:100006:0100644:file' f
            setfattr -n user.containers.override_stat -v '101000:100000:04755' g
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(xattr(tree + "/f", "user.containers.override_stat") == Array("200005:200006:0100644:file".utf8))
        #expect(xattr(tree + "/g", "user.containers.override_stat") == Array("201000:200000:04755".utf8))
        #expect(report.overrideStatsUpdated == 2)
    }

    @Test("a hard-linked inode is shifted once, whichever name is met first")
    func hardLinks() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        // Overlapping mappings: shifting twice would give a different, valid owner.
        let wide = mapping("0:100000:300000")
        let moved = mapping("0:100500:300000")
        try sh("""
            set -e; cd \(tree); mkdir a b; touch a/f; ln a/f a/f2; ln a/f b/f3
            chown 100000:100000 . a b; chown 101000:101000 a/f
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: wide, to: moved)
        for name in ["a/f", "a/f2", "b/f3"] {
            #expect(try owner(tree + "/" + name) == Owner(uid: 101_500, gid: 101_500, mode: 0o644))
        }
        #expect(report.hardLinksSkipped == 2)
        #expect(report.entriesVisited == 6)
        #expect(report.ownersChanged == 4)
    }

    @Test("symlinks are changed themselves; what they point to outside the tree is untouched")
    func symlinks() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        let outside = scratch.directory("outside")
        try sh("""
            set -e; touch \(outside)/target; mkdir \(outside)/dir; touch \(outside)/dir/inner
            chown 100000:100000 \(outside) \(outside)/target \(outside)/dir \(outside)/dir/inner
            chmod 4755 \(outside)/target
            cd \(tree); ln -s \(outside)/target abs; ln -s ../outside/target rel; ln -s \(outside)/dir dirlink
            ln -s /nonexistent dangling
            chown 100000:100000 .; chown -h 100001:100002 abs rel dirlink dangling
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        for name in ["abs", "rel", "dirlink", "dangling"] {
            #expect(try owner(tree + "/" + name).uid == 200_001)
            #expect(try owner(tree + "/" + name).gid == 200_002)
        }
        #expect(try owner(outside + "/target") == Owner(uid: 100_000, gid: 100_000, mode: 0o4755))
        #expect(try owner(outside + "/dir").uid == 100_000)
        #expect(try owner(outside + "/dir/inner").uid == 100_000)
        #expect(report.entriesVisited == 5)

        // The tree itself given as a symlink is refused.
        try sh("ln -s \(tree) \(scratch.path)/link-to-tree")
        #expect(throws: StorageError.self) {
            try ChownShifter().shift(tree: FilePath(scratch.path + "/link-to-tree"), from: to, to: from)
        }
        #expect(try owner(tree + "/abs").uid == 200_001)
    }

    @Test("names of every length from 1 to 255 bytes")
    func nameLengths() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        let root = try FileDescriptor.openDirectory(FilePath(tree))
        defer { root.closeQuietly() }
        try root.changeOwner(at: ".", user: UserID(rawValue: 100_000), group: GroupID(rawValue: 100_000))
        for length in 1...255 {
            // Mixed bytes, including multibyte UTF-8 where the length allows.
            let name = length >= 3 ? "é" + String(repeating: "n", count: length - 2) : String(repeating: "x", count: length)
            #expect(name.utf8.count == length)
            let path = FilePath(name)
            if length % 2 == 0 {
                try root.makeDirectory(at: path)
            } else {
                try root.open(at: path, .writeOnly, options: [.create], permissions: .init(rawValue: 0o600)).close()
            }
            try root.changeOwner(at: path, user: UserID(rawValue: 100_000 + UInt32(length)), group: GroupID(rawValue: 100_000))
        }
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(report.entriesVisited == 256)
        for entry in try root.directoryEntries() {
            let status = try root.status(at: FilePath(entry.name))
            #expect(status.userID.rawValue == 200_000 + UInt32(entry.name.utf8.count), "\(entry.name)")
            #expect(status.groupID.rawValue == 200_000)
        }
    }

    @Test("names that are not UTF-8 are reached byte for byte")
    func nonUTF8Names() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree); mkdir "$(printf 'dir\\377')"; touch "$(printf 'dir\\377/f\\300\\200')" "$(printf '\\351t\\351')"
            touch "$(printf '\\357\\277\\275t\\357\\277\\275')"
            chown -R 100000:100000 .; chown 100007:100008 "$(printf '\\351t\\351')" "$(printf 'dir\\377/f\\300\\200')"
            """)
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(report.entriesVisited == 5)
        #expect(report.ownersChanged == 5)
        #expect(try sh("cd \(tree) && find . -uid 200007 -gid 200008 | wc -l") == "2\n")
        #expect(try sh("cd \(tree) && find . ! -uid 200000 ! -uid 200007 | wc -l") == "0\n")
    }

    @Test("a 200-level tree whose paths are longer than PATH_MAX")
    func deep() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        let component = String(repeating: "d", count: 40)
        var current = try FileDescriptor.openDirectory(FilePath(tree))
        try current.changeOwner(at: ".", user: UserID(rawValue: 100_000), group: GroupID(rawValue: 100_000))
        var descriptors = [current]
        for level in 0..<200 {
            try current.makeDirectory(at: FilePath(component))
            try current.open(at: "file", .writeOnly, options: [.create], permissions: .init(rawValue: 0o644)).close()
            try current.changeOwner(at: "file", user: UserID(rawValue: 100_000 + UInt32(level)), group: GroupID(rawValue: 100_000))
            try current.changeOwner(at: FilePath(component), user: UserID(rawValue: 100_000), group: GroupID(rawValue: 100_001))
            current = try current.openDirectory(at: FilePath(component))
            descriptors.append(current)
        }
        defer { descriptors.forEach { $0.closeQuietly() } }
        #expect(41 * 200 > Int(PATH_MAX))

        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(report.entriesVisited == 401)
        #expect(report.ownersChanged == 401)
        for (level, fd) in descriptors.enumerated() {
            if level < 200 {
                #expect(try fd.status(at: "file").userID.rawValue == 200_000 + UInt32(level))
                #expect(try fd.status(at: FilePath(component)).groupID.rawValue == 200_001)
            }
        }
        #expect(try descriptors[0].status().userID.rawValue == 200_000)
    }

    @Test("a directory of 10,000 entries")
    func wide() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        let root = try FileDescriptor.openDirectory(FilePath(tree))
        defer { root.closeQuietly() }
        try root.changeOwner(at: ".", user: UserID(rawValue: 100_000), group: GroupID(rawValue: 100_000))
        for index in 0..<10_000 {
            let path = FilePath("entry-\(index)")
            if index % 100 == 0 {
                try root.makeDirectory(at: path)
            } else {
                try root.open(at: path, .writeOnly, options: [.create], permissions: .init(rawValue: 0o644)).close()
            }
            try root.changeOwner(at: path, user: UserID(rawValue: 100_000 + UInt32(index)), group: GroupID(rawValue: 100_000 + UInt32(index % 7)))
        }
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(report.entriesVisited == 10_001)
        #expect(report.ownersChanged == 10_001)
        var wrong = 0
        for entry in try root.directoryEntries() {
            let index = UInt32(entry.name.dropFirst("entry-".count))!
            let status = try root.status(at: FilePath(entry.name))
            if status.userID.rawValue != 200_000 + index || status.groupID.rawValue != 200_000 + index % 7 { wrong += 1 }
        }
        #expect(wrong == 0)
    }

    @Test("an ID the mappings cannot hold fails with the file's name and leaves the tree unchanged",
          arguments: ["owner outside the old mapping", "owner outside the new mapping", "ACL entry outside",
                      "capability root outside", "override_stat outside"])
    func unmappable(kind: String) throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        // Many mappable files first, so that a walk that changed as it went would have changed some.
        try sh("""
            set -e; cd \(tree); mkdir -p a/b c
            seq -f a/f%g 1 300 | xargs touch; seq -f c/g%g 1 300 | xargs touch
            touch a/b/bad; chown -R 100000:100000 .; chmod 4755 a/f1
            setfacl -m u:100001:rw a/f2; setcap cap_net_raw+ep a/f3
            """)
        var target = to
        var expected = ""
        switch kind {
        case "owner outside the old mapping":
            try sh("chown 170000 \(tree)/a/b/bad")
            expected = "owner uid 170000 is outside the current uid mapping 0:100000:65536"
        case "owner outside the new mapping":
            try sh("chown 100000:102000 \(tree)/a/b/bad")
            target = mapping("0:200000:2000")
            expected = "group container gid 2000 has no host ID in the new gid mapping 0:200000:2000"
        case "ACL entry outside":
            try sh("setfacl -m g:99:r \(tree)/a/b/bad")
            expected = "ACL group gid 99 is outside the current gid mapping 0:100000:65536"
        case "capability root outside":
            try sh("setfattr -n security.capability -v 0x010000030020000000000000000000000000000040420f00 \(tree)/a/b/bad")
            expected = "capability root uid 1000000 is outside the current uid mapping 0:100000:65536"
        default:
            try sh("setfattr -n user.containers.override_stat -v '5:100000:0644' \(tree)/a/b/bad")
            expected = "override_stat user uid 5 is outside the current uid mapping 0:100000:65536"
        }
        let before = try snapshot(tree)
        do {
            _ = try ChownShifter().shift(tree: FilePath(tree), from: from, to: target)
            Issue.record("the shift should have failed")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.path == tree + "/a/b/bad")
            #expect(error.description == "shift ownership: \(tree)/a/b/bad: \(expected)")
        }
        #expect(try snapshot(tree) == before)
    }

    @Test("with .useOverflowID an unmapped owner becomes the overflow ID and the rest is shifted")
    func overflowPolicy() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("cd \(tree) && touch ok bad && chown 100000:100000 . ok && chown 170000:100001 bad")
        let options = ShiftOptions(unmappedIDs: .useOverflowID, overflowUID: 65534, overflowGID: 65533)
        let report = try ChownShifter(options: options).shift(tree: FilePath(tree), from: from, to: to)
        #expect(try owner(tree + "/bad") == Owner(uid: 65534, gid: 200_001, mode: 0o644))
        #expect(try owner(tree + "/ok").uid == 200_000)
        #expect(report.idsOverflowed == 1)
    }

    @Test("the walk stays on the tree's mount: a tmpfs or a bind mount inside it is left alone")
    func mountPoint() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree); mkdir mnt; touch f; chown 100000:100000 . mnt f
            mount -t tmpfs -o mode=0755 strata-test mnt; touch mnt/inner; chown 100000:100000 mnt mnt/inner
            """)
        defer { _ = try? sh("umount -l \(tree)/mnt") }
        // A bind mount of the same filesystem has the same device number: found by statx.
        let outside = scratch.directory("outside")
        try sh("""
            set -e; touch \(outside)/kept; chown 100000:100000 \(outside) \(outside)/kept
            mkdir \(tree)/bind; chown 100000:100000 \(tree)/bind; mount --bind \(outside) \(tree)/bind
            """)
        defer { _ = try? sh("umount -l \(tree)/bind") }
        // So is a bind mount of a single file.
        try sh("""
            set -e; touch \(outside)/file-source \(tree)/bound-file
            chown 100000:100000 \(outside)/file-source \(tree)/bound-file
            mount --bind \(outside)/file-source \(tree)/bound-file
            """)
        defer { _ = try? sh("umount -l \(tree)/bound-file") }
        let report = try ChownShifter().shift(tree: FilePath(tree), from: from, to: to)
        #expect(try owner(tree + "/f").uid == 200_000)
        #expect(try owner(tree + "/mnt").uid == 100_000)
        #expect(try owner(tree + "/mnt/inner").uid == 100_000)
        #expect(try owner(outside).uid == 100_000)
        #expect(try owner(outside + "/kept").uid == 100_000)
        #expect(try owner(outside + "/file-source").uid == 100_000)
        #expect(report.mountPointsSkipped == 3)
    }

    @Test("one thread and four threads give the same result", arguments: [1, 4])
    func threadCounts(threads: Int) throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try sh("""
            set -e; cd \(tree)
            for d in $(seq 1 20); do mkdir d$d; seq -f d$d/f%g 1 50 | xargs touch; done
            chown -R 100000:100000 .; chown 101234:101235 d7/f7
            """)
        let report = try ChownShifter(options: ShiftOptions(threads: threads)).shift(tree: FilePath(tree), from: from, to: to)
        #expect(report.entriesVisited == 1021)
        #expect(report.ownersChanged == 1021)
        #expect(try owner(tree + "/d7/f7") == Owner(uid: 201_234, gid: 201_235, mode: 0o644))
        #expect(try sh("find \(tree) ! -uid 200000 | wc -l") == "1\n")
    }
}
