import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

/// Applying layer tar streams: every entry type, formats, whiteouts, owners, atomicity.
@Suite("Apply", .serialized)
struct ApplyTests {
    /// Builds a tree with every kind of entry GNU tar can carry, tars it with GNU tar, applies it,
    /// and compares the result with the source entry by entry.
    @Test("GNU tar stream of every entry type round-trips", arguments: ["", "z", "zstd"])
    func everyEntryType(compression: String) throws {
        let scratch = ScratchDirectory()
        let src = scratch.directory("src")
        let longDir = String(repeating: "d", count: 120)
        let longName = String(repeating: "n", count: 200)
        try sh("""
            set -e
            cd \(src)
            mkdir -p dir/sub \(longDir)/\(longDir)
            printf 'hello' > dir/file
            printf 'long' > \(longDir)/\(longDir)/\(longName)
            head -c 300000 /dev/urandom > dir/big
            ln dir/file dir/hardlink
            ln -s ../dir/file dir/symlink
            ln -s /absolute/target dir/abslink
            mkfifo dir/fifo
            mknod dir/chardev c 1 3
            mknod dir/blockdev b 7 200
            touch suid sgid sticky-dir-file && chmod 4755 suid && chmod 2711 sgid
            mkdir sticky && chmod 1777 sticky
            chown 1000:2000 dir/file
            chown -h 33:44 dir/symlink
            setfattr -n user.greeting -v hi dir/file
            setfacl -m u:1234:rw,g:5678:r dir/big
            setfacl -d -m u:1234:rwx dir/sub
            setcap cap_net_raw+ep suid
            touch -h -d '2021-03-04 05:06:07.123456789' dir/symlink
            touch -d '2020-01-02 03:04:05.987654321' dir/file dir/sub
            """)
        let archive = scratch.path + "/src.tar"
        let flag = compression == "z" ? "-z" : compression == "zstd" ? "--zstd" : ""
        try sh("cd \(src) && tar --xattrs --xattrs-include='*' --acls --format=pax --numeric-owner \(flag) -cf \(archive) .")

        let layer = scratch.directory("layer")
        let result = try LayerApplier.apply(archive: FilePath(archive), into: FilePath(layer))

        let expected = try snapshot(src, directoryTimes: true)
        var inodes: [String: UInt64] = [:]
        let actual = try withUnsafeMutablePointer(to: &inodes) { try snapshot(layer, directoryTimes: true, inodes: $0) }
        #expect(Set(actual.keys) == Set(expected.keys))
        for (path, want) in expected where path != "." {
            #expect(actual[path] == want, "\(path): \(actual[path].map(\.description) ?? "missing") != \(want)")
        }
        #expect(inodes["dir/file"] == inodes["dir/hardlink"])
        #expect(actual["suid"]?.mode == 0o4755)
        #expect(actual["suid"]?.xattrs["security.capability"] != nil)
        #expect(actual["dir/big"]?.xattrs["system.posix_acl_access"] != nil)
        #expect(actual["dir/sub"]?.xattrs["system.posix_acl_default"] != nil)
        #expect(actual["dir/file"]?.mtime == FileTime(seconds: 1_577_934_245, nanoseconds: 987_654_321))
        #expect(result.size == 5 + 4 + 300_000)
        let acl = try sh("getfacl -cn \(layer)/dir/big")
        #expect(acl.contains("user:1234:rw-"))
        #expect(acl.contains("group:5678:r--"))
    }

    @Test("OCI whiteouts become overlay whiteouts; the AUFS format keeps them as files")
    func whiteouts() throws {
        var tar = TarBuilder()
        tar.add("gone/", type: .directory, mode: 0o755)
        tar.add("gone/.wh..wh..opq")
        tar.add("gone/kept", data: Array("x".utf8))
        tar.add(".wh.deleted")
        tar.add("sub/.wh.nested", uid: 5, gid: 6)
        let bytes = tar.finished()

        let scratch = ScratchDirectory()
        let overlay = scratch.directory("overlay")
        try apply(bytes, to: overlay)
        let dir = try FileDescriptor.openDirectory(FilePath(overlay))
        defer { dir.closeQuietly() }
        let deleted = try dir.status(at: "deleted")
        #expect(deleted.kind == .characterDevice && deleted.specialDevice == 0)
        #expect(try dir.status(at: "sub/nested").kind == .characterDevice)
        #expect(try dir.extendedAttribute("trusted.overlay.opaque", at: "gone") == Array("y".utf8))
        #expect(try dir.status(at: "gone/kept").kind == .regular)
        #expect(!dir.exists(at: ".wh.deleted"))
        #expect(!dir.exists(at: "gone/.wh..wh..opq"))

        let aufs = scratch.directory("aufs")
        try apply(bytes, to: aufs, options: ApplyOptions(whiteoutFormat: .aufs))
        let adir = try FileDescriptor.openDirectory(FilePath(aufs))
        defer { adir.closeQuietly() }
        #expect(try adir.status(at: ".wh.deleted").kind == .regular)
        #expect(try adir.status(at: "gone/.wh..wh..opq").kind == .regular)
        #expect(try adir.extendedAttribute("trusted.overlay.opaque", at: "gone") == nil)
    }

    @Test("owners are mapped from container IDs to host IDs; an unmapped owner is refused")
    func idMapping() throws {
        var tar = TarBuilder()
        tar.add("root-owned", uid: 0, gid: 0)
        tar.add("user-owned", uid: 1000, gid: 1001)
        tar.add("implicit/child", uid: 7, gid: 7)
        let maps = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                              gidMap: [IDMap(containerID: 0, hostID: 200_000, size: 65536)])
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(tar.finished(), to: layer, options: ApplyOptions(idMappings: maps))
        let snap = try snapshot(layer)
        #expect(snap["root-owned"].map { ($0.uid, $0.gid) } ?? (0, 0) == (100_000, 200_000))
        #expect(snap["user-owned"].map { ($0.uid, $0.gid) } ?? (0, 0) == (101_000, 201_001))
        #expect(snap["implicit/child"].map { ($0.uid, $0.gid) } ?? (0, 0) == (100_007, 200_007))
        // A parent the stream never named belongs to the mapping's root.
        #expect(snap["implicit"].map { ($0.uid, $0.gid) } ?? (0, 0) == (100_000, 200_000))

        var outside = TarBuilder()
        outside.add("fine", uid: 1)
        outside.add("too-big", uid: 70_000)
        let other = scratch.directory("other")
        let before = try snapshot(other, directoryTimes: true)
        #expect(throws: StorageError.self) { try apply(outside.finished(), to: other, options: ApplyOptions(idMappings: maps)) }
        #expect(try snapshot(other, directoryTimes: true) == before)
    }

    @Test("v3 file capabilities get their root ID mapped")
    func capabilityRootID() throws {
        // vfs_cap_data v3: magic 0x03000000 | effective, permitted, inheritable x2, rootid 0.
        var cap: [UInt8] = [0x01, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        cap += [0, 0, 0, 0]
        let hex = cap.map { String(format: "%02x", $0) }.joined()
        var tar = TarBuilder()
        tar.add("ping", mode: 0o755, pax: ["SCHILY.xattr.security.capability": String(decoding: cap, as: UTF8.self)])
        _ = hex
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        let maps = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                              gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])
        try apply(tar.finished(), to: layer, options: ApplyOptions(idMappings: maps))
        let dir = try FileDescriptor.openDirectory(FilePath(layer))
        defer { dir.closeQuietly() }
        let stored = try #require(try dir.extendedAttribute("security.capability", at: "ping"))
        // The kernel may store it as v3 with the mapped root ID.
        #expect(stored.count == 24)
        let rootID = UInt32(stored[20]) | UInt32(stored[21]) << 8 | UInt32(stored[22]) << 16 | UInt32(stored[23]) << 24
        #expect(rootID == 100_000)
    }

    @Test("force_mask writes the mask and keeps the real owner and mode in override_stat")
    func forceMask() throws {
        var tar = TarBuilder()
        tar.add("dir/", type: .directory, mode: 0o755, uid: 3, gid: 4)
        tar.add("dir/file", data: Array("x".utf8), mode: 0o4711, uid: 5, gid: 6)
        tar.add("dev", type: .char, mode: 0o600, devMajor: 1, devMinor: 5)
        tar.add("link", type: .symlink, linkName: "dir/file")
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(tar.finished(), to: layer, options: ApplyOptions(forceMask: FilePermissions(rawValue: 0o700)))
        let snap = try snapshot(layer)
        #expect(snap["dir/file"]?.mode == 0o700)
        #expect(snap["dir"]?.mode == 0o700)
        #expect(snap["dir/file"]?.xattrs["user.containers.override_stat"] == Array("5:6:04711:file".utf8))
        #expect(snap["dir"]?.xattrs["user.containers.override_stat"] == Array("3:4:0755:dir".utf8))
        // A device becomes a plain file that says what it stands for (as a rootless store keeps it).
        #expect(snap["dev"]?.kind == .regular)
        #expect(snap["dev"]?.xattrs["user.containers.override_stat"] == Array("0:0:0600:char-1-5".utf8))
        #expect(snap["link"]?.xattrs["user.containers.override_stat"] == nil)
    }

    @Test("applying onto a layer with content replaces entries and keeps the rest untouched")
    func applyOntoExisting() throws {
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try sh("cd \(layer) && mkdir -p keep/deep && echo old > keep/file && echo old > replaced && ln keep/file keep/twin && echo ok > keep/deep/x")
        let outsideLink = scratch.file("other-link", Array("old\n".utf8))
        try sh("ln \(layer)/replaced \(outsideLink)2")
        var tar = TarBuilder()
        tar.add("replaced", data: Array("new".utf8))
        tar.add("keep/added", data: Array("add".utf8))
        let result = try apply(tar.finished(), to: layer)
        #expect(result.entries == 2)
        let snap = try snapshot(layer)
        #expect(snap["replaced"]?.content == Array("new".utf8))
        #expect(snap["keep/file"]?.content == Array("old\n".utf8))
        #expect(snap["keep/deep/x"]?.content == Array("ok\n".utf8))
        #expect(snap["keep/added"]?.content == Array("add".utf8))
        // The old inode, still linked from outside, was not written through.
        #expect(try String(contentsOfFile: outsideLink + "2", encoding: .utf8) == "old\n")
        var inodes: [String: UInt64] = [:]
        _ = try withUnsafeMutablePointer(to: &inodes) { try snapshot(layer, inodes: $0) }
        #expect(inodes["keep/file"] == inodes["keep/twin"])
        // No staging directory is left beside the layer.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted() == ["layer", "other-link", "other-link2"].sorted())
    }

    @Test("later entries win: a file replaces a directory, a directory entry updates a directory")
    func replacements() throws {
        var tar = TarBuilder()
        tar.add("a/", type: .directory, mode: 0o700)
        tar.add("a/child", data: [1])
        tar.add("a", data: [2])
        tar.add("b", data: [3])
        tar.add("b/", type: .directory, mode: 0o750)
        tar.add("c/", type: .directory, mode: 0o700)
        tar.add("c/inner", data: [4])
        tar.add("c/", type: .directory, mode: 0o711, uid: 9)
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(tar.finished(), to: layer)
        let snap = try snapshot(layer)
        #expect(snap["a"]?.kind == .regular && snap["a"]?.content == [2])
        #expect(snap["a/child"] == nil)
        #expect(snap["b"]?.kind == .directory && snap["b"]?.mode == 0o750)
        #expect(snap["c"]?.mode == 0o711 && snap["c"]?.uid == 9)
        #expect(snap["c/inner"]?.content == [4])
    }

    @Test("directory times are restored after the entries below them are written")
    func directoryTimes() throws {
        var tar = TarBuilder()
        tar.add("d/", type: .directory, mode: 0o755, mtime: 1_000_000_000)
        tar.add("d/f1", data: [1])
        tar.add("d/f2", data: [2])
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(tar.finished(), to: layer)
        let snap = try snapshot(layer, directoryTimes: true)
        #expect(snap["d"]?.mtime == FileTime(seconds: 1_000_000_000))
    }

    @Test("the writer pool and inline writing give the same tree", arguments: [0, 1, 2, 4])
    func writerThreads(threads: Int) throws {
        var tar = TarBuilder()
        for i in 0..<500 {
            tar.add("d\(i % 7)/file\(i)", data: Array(repeating: UInt8(i % 251), count: i * 13), mode: 0o640, uid: i % 3)
        }
        tar.add("big", data: Array(repeating: 7, count: 3 << 20))
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        let result = try apply(tar.finished(), to: layer, options: ApplyOptions(writerThreads: threads))
        #expect(result.entries == 501)
        let snap = try snapshot(layer)
        for i in 0..<500 {
            let record = snap["d\(i % 7)/file\(i)"]
            #expect(record?.content == Array(repeating: UInt8(i % 251), count: i * 13))
            #expect(record?.uid == UInt32(i % 3) && record?.mode == 0o640)
        }
        #expect(snap["big"]?.size == 3 << 20)
    }
}
