import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Builds the tree most export tests use, in `root`. Returns nothing; the layout is:
///
///     bin/ (0755)  bin/cap (v3 capability, rootid 1000)  bin/tool (04755)
///     dev/  dev/fifo  dev/loop (block 7/0)  dev/null (char 1/3)
///     etc/  etc/acl (ACL user 1234 r)  etc/conf (0640, 1000:1001, user.comment, user.overlay.origin,
///           trusted.overlay.foo, trusted.other)
///     hard1, hard2 (one inode)  link -> bin/tool  share/ (02755, default ACL)  sock (socket)
///     tmp/ (01777)
func makeSampleTree(_ root: String) throws {
    try sh("""
        cd '\(root)' && mkdir -p bin dev etc share tmp && chmod 0755 bin dev etc && chmod 02755 share && chmod 01777 tmp \
        && printf 'tool\\n' > bin/tool && chmod 04755 bin/tool && printf 'cap' > bin/cap && setcap -n 1000 cap_net_raw+ep bin/cap \
        && mknod dev/null c 1 3 && mknod dev/loop b 7 0 && mkfifo dev/fifo \
        && printf 'conf' > etc/conf && chmod 0640 etc/conf && chown 1000:1001 etc/conf \
        && printf 'acl' > etc/acl && chmod 0644 etc/acl && setfacl -m u:1234:r etc/acl \
        && setfacl -d -m u:1234:rx share \
        && printf 'shared' > hard1 && ln hard1 hard2 && ln -s bin/tool link \
        && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('sock')"
        """)
    try setAttribute(root + "/etc/conf", "user.comment", Array("hello".utf8))
    try setAttribute(root + "/etc/conf", "user.overlay.origin", Array("x".utf8))
    try setAttribute(root + "/etc/conf", "trusted.overlay.foo", Array("y".utf8))
    try setAttribute(root + "/etc/conf", "trusted.other", Array("z".utf8))
    for (path, seconds) in [("bin/tool", 1_600_000_000), ("bin/cap", 1_600_000_001), ("etc/conf", 1_600_000_002),
                            ("etc/acl", 1_600_000_003), ("hard1", 1_600_000_004), ("link", 1_600_000_005),
                            ("dev/null", 1_600_000_006), ("dev/loop", 1_600_000_007), ("dev/fifo", 1_600_000_008),
                            ("bin", 1_600_000_010), ("dev", 1_600_000_011), ("etc", 1_600_000_012),
                            ("share", 1_600_000_013), ("tmp", 1_600_000_014)] {
        try setModificationTime(root + "/" + path, seconds: Int64(seconds), nanoseconds: 123_456_789)
    }
}

/// The 20-byte v2 form of `cap_net_raw+ep`.
let netRawCapabilityV2: [UInt8] = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
/// `setcap -n 1000 cap_net_raw+ep`: v3, for the namespace whose root is uid 1000 (0x3e8).
let netRawCapabilityV3Root1000: [UInt8] = netRawCapabilityV2.enumerated().map { $0.offset == 3 ? 0x03 : $0.element } + [0xE8, 0x03, 0, 0]

@Suite("Layer export", .enabled(if: runningAsRoot, "makes devices, sets trusted.* xattrs and chowns"))
struct ExportTests {
    @Test("entries, order and metadata read back with libarchive")
    func entriesReadBackWithLibarchive() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeSampleTree(scratch.path)
        let (bytes, written) = try exportLayer(scratch.path)
        #expect(written == Int64(bytes.count))
        #expect(bytes.count % 10240 == 0)
        let (records, filter) = try readTar(bytes)
        #expect(filter == .none)
        #expect(records.map(\.path) == [
            "bin/", "bin/cap", "bin/tool", "dev/", "dev/fifo", "dev/loop", "dev/null", "etc/", "etc/acl", "etc/conf",
            "hard1", "hard2", "link", "share/", "tmp/",
        ])
        let byPath = recordsByPath(records)
        let tool = try #require(byPath["bin/tool"])
        #expect(tool.type == S_IFREG && tool.permissions == 0o4755 && tool.content == Array("tool\n".utf8))
        #expect(tool.mtime == 1_600_000_000 && tool.mtimeNanoseconds == 123_456_789)
        #expect(tool.uid == 0 && tool.gid == 0)
        // Its root (uid 1000) is not the container's root: the capability keeps its namespace.
        #expect(byPath["bin/cap"]?.xattrs == ["security.capability": netRawCapabilityV3Root1000])
        #expect(byPath["etc/conf"]?.xattrs == ["user.comment": Array("hello".utf8)])
        #expect(byPath["etc/conf"]?.uid == 1000 && byPath["etc/conf"]?.gid == 1001 && byPath["etc/conf"]?.permissions == 0o640)
        // ACL in the kernel's binary form: version 2, then user::rw-, user:1234:r--, group::r--, mask::r--, other::r--.
        let acl: [UInt8] = [2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 4, 0, 0xD2, 0x04, 0, 0,
                            4, 0, 4, 0, 255, 255, 255, 255, 0x10, 0, 4, 0, 255, 255, 255, 255, 0x20, 0, 4, 0, 255, 255, 255, 255]
        #expect(byPath["etc/acl"]?.xattrs == ["system.posix_acl_access": acl])
        #expect(byPath["share/"]?.xattrs["system.posix_acl_default"]?.count == 44)
        #expect(byPath["share/"]?.permissions == 0o2755 && byPath["tmp/"]?.permissions == 0o1777)
        #expect(byPath["hard2"]?.hardlink == "hard1" && byPath["hard2"]?.size == 0)
        #expect(byPath["hard1"]?.content == Array("shared".utf8))
        #expect(byPath["link"]?.type == S_IFLNK && byPath["link"]?.symlink == "bin/tool")
        #expect(byPath["dev/null"]?.type == S_IFCHR && byPath["dev/null"]?.deviceMajor == 1 && byPath["dev/null"]?.deviceMinor == 3)
        #expect(byPath["dev/loop"]?.type == S_IFBLK && byPath["dev/loop"]?.deviceMajor == 7 && byPath["dev/loop"]?.deviceMinor == 0)
        #expect(byPath["dev/fifo"]?.type == S_IFIFO)
        #expect(byPath["bin/"]?.type == S_IFDIR && byPath["bin/"]?.mtime == 1_600_000_010 && byPath["bin/"]?.mtimeNanoseconds == 123_456_789)
    }

    @Test("GNU tar lists and extracts the stream into an equal tree")
    func gnuTarExtractsAnEqualTree() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("mkdir '\(scratch("layer"))' '\(scratch("out"))'")
        try makeSampleTree(scratch("layer"))
        let (bytes, _) = try exportLayer(scratch("layer"))
        try saveBytes(bytes, to: scratch("layer.tar"))

        let listing = try sh("tar --xattrs --xattrs-include='*' --acls -tvf '\(scratch("layer.tar"))'")
        #expect(listing.contains("hard2 link to hard1"))
        #expect(listing.contains("link -> bin/tool"))
        #expect(!listing.contains("sock"))
        try sh("tar --xattrs --xattrs-include='*' --acls --numeric-owner -xpf '\(scratch("layer.tar"))' -C '\(scratch("out"))'")

        let names: Set<String> = ["user.comment", "user.overlay.origin", "trusted.overlay.foo", "trusted.other",
                                  "security.capability", "system.posix_acl_access", "system.posix_acl_default"]
        var (expected, expectedLinks) = try snapshotTree(scratch("layer"), attributes: names)
        let (actual, actualLinks) = try snapshotTree(scratch("out"), attributes: names)
        // What the export changes on purpose: no socket, no overlay/trusted xattrs.
        expected["sock"] = nil
        expected["etc/conf"]?.xattrs = ["user.comment": Array("hello".utf8)]
        #expect(actual.keys.sorted() == expected.keys.sorted())
        for (path, snapshot) in expected {
            #expect(actual[path] == snapshot, "\(path)")
        }
        #expect(expectedLinks == [["hard1", "hard2"]])
        #expect(actualLinks == expectedLinks)
        let acl = try sh("getfacl -n --omit-header '\(scratch("out/etc/acl"))'")
        #expect(acl == "user::rw-\nuser:1234:r--\ngroup::r--\nmask::r--\nother::r--\n\n")
        let defaults = try sh("getfacl -n --omit-header -d '\(scratch("out/share"))'")
        #expect(defaults.contains("user:1234:r-x"))

        // Without --acls, GNU tar restores the ACLs from the SCHILY.xattr.system.posix_acl_* records.
        try sh("mkdir '\(scratch("out2"))' && tar --xattrs --xattrs-include='*' -xpf '\(scratch("layer.tar"))' -C '\(scratch("out2"))'")
        let second = try snapshotTree(scratch("out2"), attributes: names).files
        #expect(second["etc/acl"] == expected["etc/acl"])
        #expect(second["share"] == expected["share"])
    }

    @Test("GNU tar's own stream of a tree carries the same xattrs as ours")
    func gnuTarStreamHasTheSameXattrs() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("mkdir '\(scratch("layer"))'")
        try makeSampleTree(scratch("layer"))
        try sh("tar --xattrs --xattrs-include='user.comment' --xattrs-include='system.*' --xattrs-include='security.*' -cf '\(scratch("gnu.tar"))' -C '\(scratch("layer"))' etc/acl share etc/conf")
        let gnu = recordsByPath(try readTar(Array(try Data(contentsOf: URL(fileURLWithPath: scratch("gnu.tar"))))).records)
        let ours = recordsByPath(try readTar(try exportLayer(scratch("layer")).bytes).records)
        #expect(gnu["etc/acl"]?.xattrs == ours["etc/acl"]?.xattrs)
        #expect(gnu["share/"]?.xattrs == ours["share/"]?.xattrs)
        #expect(gnu["etc/conf"]?.xattrs == ours["etc/conf"]?.xattrs)
    }

    @Test("overlay whiteouts become .wh. files; sockets are skipped")
    func whiteoutsBecomeWhiteoutFiles() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("mkdir -p '\(scratch("d"))' && printf x > '\(scratch("d/kept"))'")
        try makeWhiteout(scratch("d/gone"))
        try makeWhiteout(scratch("top"))
        try FileDescriptor.currentWorkingDirectory.changeOwner(at: FilePath(scratch("top")), user: UserID(rawValue: 7), group: GroupID(rawValue: 8))
        try setModificationTime(scratch("top"), seconds: 1_700_000_000, nanoseconds: 5)
        try sh("cd '\(scratch(""))' && python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('d/sock')\"")
        let records = try readTar(try exportLayer(scratch.path).bytes).records
        #expect(records.map(\.path) == ["d/", "d/.wh.gone", "d/kept", ".wh.top"])
        let top = try #require(records.first { $0.path == ".wh.top" })
        #expect(top.type == S_IFREG && top.permissions == 0 && top.size == 0 && top.uid == 7 && top.gid == 8)
        #expect(top.mtime == 1_700_000_000 && top.mtimeNanoseconds == 5)
        #expect(records.first { $0.path == "d/.wh.gone" }?.type == S_IFREG)
    }

    @Test("whiteouts that share one inode (overlayfs links them) are not hard links in the stream")
    func linkedWhiteoutsStayWhiteouts() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeWhiteout(scratch("a"))
        try sh("cd '\(scratch(""))' && ln a b && mkdir c && ln a c/d")
        let records = try readTar(try exportLayer(scratch.path).bytes).records
        #expect(records.map(\.path) == [".wh.a", ".wh.b", "c/", "c/.wh.d"])
        #expect(records.allSatisfy { $0.hardlink == nil })
    }

    @Test("a metacopy file with no lower holding its data is refused with a clear error")
    func metacopyFilesAreRefused() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && mkdir d && truncate -s 4096 d/meta")
        try setAttribute(scratch("d/meta"), "trusted.overlay.metacopy", [])
        #expect {
            try exportLayer(scratch.path)
        } throws: { error in
            guard let error = error as? StorageError else { return false }
            return error.path == "/d/meta" && error.code == .corrupt && error.reason.contains("metacopy")
        }
    }

    @Test("a metacopy file exports the data of the first lower that holds it (past metacopy lowers, at its redirect)")
    func metacopyFilesExportLowerData() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("""
            set -e; cd '\(scratch(""))'; mkdir -p layer/d copy/d base/d
            truncate -s 5 layer/d/meta copy/d/meta; printf hello > base/d/meta
            truncate -s 3 layer/d/moved; printf old > base/d/orig
            """)
        for file in ["layer/d/meta", "copy/d/meta", "layer/d/moved"] {
            try setAttribute(scratch(file), "trusted.overlay.metacopy", [])
        }
        try setAttribute(scratch("layer/d/moved"), "trusted.overlay.redirect", Array("/d/orig".utf8))
        let records = try readTar(try exportLayer(scratch("layer"), lowers: [scratch("copy"), scratch("base")]).bytes).records
        #expect(records.first { $0.path == "d/meta" }?.content == Array("hello".utf8))
        #expect(records.first { $0.path == "d/moved" }?.content == Array("old".utf8))
        #expect(records.allSatisfy { $0.xattrs.keys.allSatisfy { !$0.hasPrefix("trusted.") } })
    }

    @Test("an opaque directory gets .wh..wh..opq only when a lower has the directory")
    func opaqueMarkerOnlyOverALowerDirectory() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("""
            mkdir -p '\(scratch("lower2/old/deep"))' '\(scratch("lower1"))' '\(scratch("upper/old"))' '\(scratch("upper/fresh"))' \
                '\(scratch("upper/hidden"))' '\(scratch("lower2/hidden"))' \
            && printf a > '\(scratch("upper/old/a"))' && chmod 0750 '\(scratch("upper/old"))'
            """)
        // lower1 (above lower2) deletes `hidden`: the directory in lower2 no longer shows.
        try makeWhiteout(scratch("lower1/hidden"))
        for dir in ["upper/old", "upper/fresh", "upper/hidden"] {
            try setAttribute(scratch(dir), "trusted.overlay.opaque", Array("y".utf8))
        }
        // An overlay mounted with `userxattr` marks opaque directories with user.overlay.opaque.
        try sh("mkdir '\(scratch("upper/rootless"))' '\(scratch("lower2/rootless"))'")
        try setAttribute(scratch("upper/rootless"), "user.overlay.opaque", Array("y".utf8))
        let lowers = [scratch("lower1"), scratch("lower2")]
        let records = try readTar(try exportLayer(scratch("upper"), lowers: lowers).bytes).records
        #expect(records.map(\.path) == ["fresh/", "hidden/", "old/", "old/.wh..wh..opq", "old/a", "rootless/", "rootless/.wh..wh..opq"])
        let marker = try #require(records.first { $0.path == "old/.wh..wh..opq" })
        #expect(marker.type == S_IFREG && marker.size == 0 && marker.permissions == 0o750)
        #expect(records.allSatisfy { $0.xattrs.isEmpty })
        // Without lowers nothing is marked.
        let alone = try readTar(try exportLayer(scratch("upper")).bytes).records
        #expect(alone.map(\.path) == ["fresh/", "hidden/", "old/", "old/a", "rootless/"])
    }

    @Test("AUFS layers pass their whiteout files through and drop AUFS metadata")
    func aufsWhiteoutsPassThrough() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("""
            cd '\(scratch(""))' && mkdir -p d .wh..wh.plnk && touch d/.wh..wh..opq d/.wh.gone .wh..wh.aufs && printf x > d/f
            """)
        try makeWhiteout(scratch("d/chr"))
        let options = ExportOptions(whiteoutFormat: .aufs)
        let records = try readTar(try exportLayer(scratch.path, options: options).bytes).records
        #expect(records.map(\.path) == ["d/", "d/.wh..wh..opq", "d/.wh.gone", "d/chr", "d/f"])
        #expect(records.first { $0.path == "d/chr" }?.type == S_IFCHR)
    }

    @Test("owners and ACL entries are mapped from host to container IDs")
    func ownersAreMappedToContainerIDs() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("""
            cd '\(scratch(""))' && mkdir d && printf x > d/f && ln -s f d/l && chown -h 100000:100000 d d/l && chown 101000:100005 d/f \
            && setfacl -m u:100033:r,g:100044:w d/f
            """)
        // A whiteout owned by an ID outside the mapping is written as 0:0, not refused.
        try makeWhiteout(scratch("d/w"))
        let mappings = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                                  gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])
        let records = recordsByPath(try readTar(try exportLayer(scratch.path, options: ExportOptions(idMappings: mappings)).bytes).records)
        #expect(records["d/"]?.uid == 0 && records["d/"]?.gid == 0)
        #expect(records["d/f"]?.uid == 1000 && records["d/f"]?.gid == 5)
        #expect(records["d/l"]?.uid == 0 && records["d/l"]?.gid == 0)
        #expect(records["d/.wh.w"]?.uid == 0 && records["d/.wh.w"]?.permissions == 0)
        let acl = try #require(records["d/f"]?.xattrs["system.posix_acl_access"])
        // Entries: user:: , user:33, group::, group:44, mask::, other:: (8 bytes each after the version).
        #expect(acl[12..<14] == [2, 0] && acl[16..<20] == [33, 0, 0, 0])
        #expect(acl[28..<30] == [8, 0] && acl[32..<36] == [44, 0, 0, 0])

        try sh("chown 5:5 '\(scratch("d/f"))'")
        var partial: [UInt8] = []
        #expect {
            _ = try captureOutput { fd in
                defer { partial = (try? fd.seek(offset: 0, from: .start)).flatMap { _ in try? fd.readToEnd() } ?? [] }
                return try LayerExporter.export(layer: FilePath(scratch.path), lowers: [], to: fd, options: ExportOptions(idMappings: mappings))
            }
        } throws: { error in
            guard let error = error as? StorageError else { return false }
            return error.path == "/d/f" && error.reason.contains("5:5") && error.code == .invalidArgument
        }
        // The failed export wrote nothing that looks like a complete tar (no end-of-archive blocks).
        #expect(partial.count % 512 == 0)
        #expect(!partial.suffix(1024).allSatisfy { $0 == 0 } || partial.isEmpty)
    }

    @Test("a v3 capability of the container's root is written as v2; one of another namespace keeps v3, mapped")
    func capabilityNamespaces() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && printf a > root-cap && printf b > other-cap && chown -R 100000:100000 . && setcap -n 100000 cap_net_raw+ep root-cap && setcap -n 101000 cap_net_raw+ep other-cap")
        let mappings = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                                  gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])
        let records = recordsByPath(try readTar(try exportLayer(scratch.path, options: ExportOptions(idMappings: mappings)).bytes).records)
        #expect(records["root-cap"]?.xattrs["security.capability"] == netRawCapabilityV2)
        // Root 101000 on the host is uid 1000 in the container.
        #expect(records["other-cap"]?.xattrs["security.capability"] == netRawCapabilityV3Root1000)

        // A capability whose namespace root has no container ID cannot be expressed: refused.
        try sh("cd '\(scratch(""))' && printf c > outside-cap && chown 100000:100000 outside-cap && setcap -n 5 cap_net_raw+ep outside-cap")
        #expect(throws: StorageError.self) {
            _ = try exportLayer(scratch.path, options: ExportOptions(idMappings: mappings))
        }
    }

    @Test("user.containers.override_stat gives the owner and mode, and is not exported")
    func overrideStatReplacesOwnerAndMode() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && mkdir d && printf x > d/f && chmod 0600 d/f d")
        try setAttribute(scratch("d/f"), "user.containers.override_stat", Array("1000:1001:04755:file".utf8))
        try setAttribute(scratch("d"), "user.containers.override_stat", Array("0:0:0755:dir".utf8))
        try setAttribute(scratch("d/f"), "user.kept", Array("v".utf8))
        let records = recordsByPath(try readTar(try exportLayer(scratch.path).bytes).records)
        #expect(records["d/f"]?.uid == 1000 && records["d/f"]?.gid == 1001 && records["d/f"]?.permissions == 0o4755)
        #expect(records["d/f"]?.xattrs == ["user.kept": Array("v".utf8)])
        #expect(records["d/"]?.permissions == 0o755 && records["d/"]?.xattrs == [:])
    }

    @Test("exporting twice gives identical bytes", arguments: [StreamCompression.none, .gzip, .zstd])
    func exportIsStable(compression: StreamCompression) throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeSampleTree(scratch.path)
        try sh("cd '\(scratch(""))' && for i in 5 3 9 1 7; do printf $i > file$i; done && mkdir -p z/y/x && printf q > z/y/x/q")
        let options = ExportOptions(compression: compression)
        let first = try exportLayer(scratch.path, options: options)
        let second = try exportLayer(scratch.path, options: options)
        #expect(first.bytes == second.bytes)
        #expect(first.written == Int64(first.bytes.count))
        let (records, filter) = try readTar(first.bytes)
        #expect(filter == (compression == .none ? .none : compression == .gzip ? .gzip : .zstd))
        #expect(records.count == 15 + 5 + 4)
        if compression == .gzip {
            #expect(first.bytes.starts(with: [0x1F, 0x8B]))
            try saveBytes(first.bytes, to: scratch.path + ".tgz")
            defer { unlink(scratch.path + ".tgz") }
            #expect(try sh("tar -tzf '\(scratch.path).tgz' | wc -l").trimmingCharacters(in: .whitespacesAndNewlines) == "24")
        }
    }

    @Test("export from a change list writes the listed paths and whiteouts for deletions")
    func exportFromChangeList() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && mkdir -p etc/sub && printf new > etc/new && printf a > etc/sub/a && ln etc/new etc/new2 && ln -s new etc/link")
        let changes = [
            Change(path: "/etc/sub/a", kind: .modify), Change(path: "/etc", kind: .modify),
            Change(path: "/etc/new", kind: .add), Change(path: "/etc/new2", kind: .add), Change(path: "/etc/old", kind: .delete),
            Change(path: "/etc/link", kind: .add), Change(path: "/etc/vanished", kind: .add), Change(path: "/gone", kind: .delete),
        ]
        let (bytes, written) = try captureOutput { fd in
            try LayerExporter.export(changes: changes, root: FilePath(scratch.path), to: fd, options: ExportOptions())
        }
        #expect(written == Int64(bytes.count))
        let records = try readTar(bytes).records
        #expect(records.map(\.path) == ["etc/", "etc/link", "etc/new", "etc/new2", "etc/.wh.old", "etc/sub/a", ".wh.gone"])
        let byPath = recordsByPath(records)
        #expect(byPath["etc/new2"]?.hardlink == "etc/new")
        #expect(byPath["etc/.wh.old"]?.permissions == 0 && byPath["etc/.wh.old"]?.size == 0)
        #expect(byPath["etc/sub/a"]?.content == Array("a".utf8))
    }

    @Test("long paths, names that are not UTF-8 and multi-MiB files survive a GNU tar extraction")
    func longAndBinaryNamesAndBigFiles() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        let long = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 150)
        try sh("""
            mkdir -p '\(scratch("layer"))/\(String(repeating: "d", count: 120))' '\(scratch("out"))' \
            && printf long > '\(scratch("layer"))/\(long)' \
            && python3 -c "open(b'\(scratch("layer"))/caf\\xe9', 'wb').write(b'latin1')" \
            && head -c 3145729 /dev/urandom > '\(scratch("layer/big"))'
            """)
        let (bytes, _) = try exportLayer(scratch("layer"))
        let records = try readTar(bytes).records
        #expect(records.contains { $0.path == long && $0.content == Array("long".utf8) })
        #expect(records.first { $0.path == "big" }?.size == 3_145_729)
        try saveBytes(bytes, to: scratch("layer.tar"))
        try sh("tar -xpf '\(scratch("layer.tar"))' -C '\(scratch("out"))'")
        try sh("cmp '\(scratch("layer/big"))' '\(scratch("out/big"))' && cmp '\(scratch("layer"))/\(long)' '\(scratch("out"))/\(long)'")
        let latin1 = try sh("python3 -c \"print(open(b'\(scratch("out"))/caf\\xe9', 'rb').read().decode())\"")
        #expect(latin1 == "latin1\n")
    }
}
