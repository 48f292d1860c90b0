@testable import ContainerdSnapshotter
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A snapshotter in a scratch directory, in this process.
func makeSnapshotter(_ scratch: Scratch, configText: String = "") throws -> Snapshotter {
    let root = FilePath(scratch.sub("root"))
    var configuration = try SnapshotterConfiguration(root: root, parsing: "[snapshotter]\nrun_root = \"\(scratch.sub("run"))\"\n" + configText,
                                                     path: "test.conf")
    configuration.root = root
    return try Snapshotter(configuration: configuration)
}

func mountAll(_ specs: [MountSpec], at target: String) throws {
    for spec in specs {
        let result = try run("/bin/mount", ["-t", spec.type, "-o", spec.options.joined(separator: ","), spec.source, target])
        guard result.status == 0 else { throw SnapshotterTestError("mount \(spec): \(result.stderr)") }
    }
}

@Suite("ContainerdSnapshotter: filters and configuration")
struct FilterTests {
    func record(_ key: String, _ kind: SnapshotKind, parent: String? = nil, labels: [String: String] = [:]) -> SnapshotRecord {
        SnapshotRecord(id: 1, key: key, kind: kind, parentID: nil, parentKey: parent, layer: try! LayerID("snap-1"),
                       created: 0, updated: 0, labels: labels)
    }

    @Test("containerd's filter forms select by name, parent, kind and labels; alternatives are ORed")
    func filters() throws {
        let a = record("a", .active, parent: "p", labels: ["containerd.io/gc.root": "check-walk", "l": "2"])
        let p = record("p", .committed, labels: ["containerd.io/gc.root": "check-walk"])
        func matching(_ filters: [String]) throws -> [String] {
            let filter = try SnapshotFilter(parsing: filters)
            return [a, p].filter(filter.matches).map(\.key)
        }
        #expect(try matching([]) == ["a", "p"])
        #expect(try matching(["labels.\"containerd.io/gc.root\"==check-walk"]) == ["a", "p"])
        #expect(try matching(["kind==active,labels.\"containerd.io/gc.root\"==check-walk"]) == ["a"])
        #expect(try matching(["name==p", "name==a"]) == ["a", "p"])
        #expect(try matching(["parent!=\"\""]) == ["a"])
        #expect(try matching(["parent==p"]) == ["a"])
        #expect(try matching(["labels.l"]) == ["a"])
        #expect(try matching(["labels.l==3"]) == [])
        #expect(try matching(["name~=^[ap]$"]) == ["a", "p"])
        #expect(try matching(["kind==committed"]) == ["p"])
    }

    @Test("a malformed filter is one invalid-argument error")
    func badFilters() {
        for text in ["kind=active", "labels.\"unterminated", "==x", "name==a,"] {
            #expect(throws: StorageError.self, "\(text)") { try SnapshotFilter(parsing: [text]) }
        }
    }

    @Test("the [snapshotter] section sets run root, limits, label and metadata sync; an unknown key or value names its line")
    func configuration() throws {
        let text = """
            [storage]
            driver = "overlay"
            [snapshotter]
            run_root = "/run/x"   # comment
            size = "10G"
            inodes = "5000"
            mount_label = "system_u:object_r:container_file_t:s0"
            metadata_sync = "full"
            """
        let c = try SnapshotterConfiguration(root: "/r", parsing: text, path: "f")
        #expect(c.metadataSync == .full)
        #expect(SnapshotterConfiguration(root: "/r").metadataSync == .normal)
        let badSync = #expect(throws: StorageError.self) {
            try SnapshotterConfiguration(root: "/r", parsing: "[snapshotter]\nmetadata_sync = \"sometimes\"\n", path: "f")
        }
        #expect(badSync?.description.contains("f:2") == true)
        #expect(c.runRoot == "/run/x")
        #expect(c.defaultQuota == QuotaLimits(size: 10 << 30, inodes: 5000))
        #expect(c.mountLabel?.rawValue == "system_u:object_r:container_file_t:s0")
        let error = #expect(throws: StorageError.self) {
            try SnapshotterConfiguration(root: "/r", parsing: "[snapshotter]\nsize = \"10G\"\nbogus = \"1\"\n", path: "f")
        }
        #expect(error?.description.contains("f:3") == true)
    }
}

@Suite("ContainerdSnapshotter: snapshots over the driver", .serialized, .enabled(if: runningAsRoot, "mounts overlays: needs root"))
struct SnapshotterTests {
    @Test("prepare, write, commit, stack, view: containerd's mount specs show each layer's files")
    func lifecycle() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        let target = scratch.sub("mnt")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)

        let base = try sn.prepare(key: "ns/1/base-tmp", parent: "", labels: [:])
        #expect(base.count == 1 && base[0].type == "bind" && base[0].options.contains("rw"))
        try mountAll(base, at: target)
        try "one".write(toFile: target + "/a", atomically: false, encoding: .utf8)
        umount2(target, 0)
        try sn.commit(name: "ns/1/base", key: "ns/1/base-tmp", labels: ["x": "y"])
        #expect(try sn.stat(key: "ns/1/base").kind == .committed)
        #expect(try sn.stat(key: "ns/1/base").labels == ["x": "y"])
        #expect(throws: StorageError.self) { try sn.stat(key: "ns/1/base-tmp") }

        let child = try sn.prepare(key: "c", parent: "ns/1/base", labels: [:])
        #expect(child[0].type == "overlay")
        #expect(child[0].options.contains { $0.hasPrefix("upperdir=") })
        try mountAll(child, at: target)
        #expect(try String(contentsOfFile: target + "/a", encoding: .utf8) == "one")
        try "two".write(toFile: target + "/b", atomically: false, encoding: .utf8)
        umount2(target, 0)
        try sn.commit(name: "top", key: "c", labels: [:])
        #expect(try sn.stat(key: "top").parentKey == "ns/1/base")

        let view = try sn.view(key: "v", parent: "top", labels: [:])
        #expect(view[0].type == "overlay" && !view[0].options.contains { $0.hasPrefix("upperdir=") })
        try mountAll(view, at: target)
        #expect(try String(contentsOfFile: target + "/a", encoding: .utf8) == "one")
        #expect(try String(contentsOfFile: target + "/b", encoding: .utf8) == "two")
        #expect(FileManager.default.createFile(atPath: target + "/c", contents: nil) == false)
        umount2(target, 0)

        #expect(try sn.list(SnapshotFilter(parsing: ["kind==committed"])).map(\.key).sorted() == ["ns/1/base", "top"])
        #expect(try sn.mounts(key: "v") == view)
        try sn.remove(key: "v")
        try sn.remove(key: "top")
        try sn.remove(key: "ns/1/base")
        #expect(try sn.list(SnapshotFilter(parsing: [])).isEmpty)
        #expect(try sn.driver.listLayers().isEmpty)
    }

    @Test("bad requests fail with the error containerd expects, and change nothing")
    func badRequests() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        _ = try sn.prepare(key: "a", parent: "", labels: [:])
        func code(_ body: () throws -> Void) -> StorageError.Code? {
            do { try body(); return nil } catch let e as StorageError { return e.code } catch { return nil }
        }
        #expect(code { _ = try sn.prepare(key: "a", parent: "", labels: [:]) } == .alreadyExists)
        #expect(code { _ = try sn.prepare(key: "b", parent: "nope", labels: [:]) } == .notFound)
        #expect(code { _ = try sn.prepare(key: "b", parent: "a", labels: [:]) } == .invalidArgument)  // not committed
        #expect(code { _ = try sn.prepare(key: "", parent: "", labels: [:]) } == .invalidArgument)
        #expect(code { _ = try sn.prepare(key: "x\u{0}y", parent: "", labels: [:]) } == .invalidArgument)
        #expect(code { _ = try sn.prepare(key: "x\ny", parent: "", labels: [:]) } == .invalidArgument)
        #expect(code { _ = try sn.prepare(key: "b", parent: "", labels: [SnapshotLabels.uidMapping: "0:1000:10"]) } == .invalidArgument)
        #expect(code { _ = try sn.prepare(key: "b", parent: "", labels: [SnapshotLabels.size: "lots"]) } == .invalidArgument)
        #expect(code { try sn.commit(name: "c", key: "nope", labels: [:]) } == .notFound)
        try sn.commit(name: "c", key: "a", labels: [:])
        _ = try sn.view(key: "v", parent: "c", labels: [:])
        #expect(code { try sn.commit(name: "d", key: "v", labels: [:]) } == .busy)       // a view
        #expect(code { try sn.remove(key: "c") } == .busy)                               // has a child
        #expect(code { _ = try sn.mounts(key: "c") } == .busy)                           // committed
        #expect(code { try sn.remove(key: "nope") } == .notFound)
        #expect(code { _ = try sn.update(key: "c", labels: [:], fields: ["parent"]) } == .invalidArgument)
        // A key shaped like a path is only a key: no file appears outside the root.
        _ = try sn.prepare(key: "../../../../escape", parent: "", labels: [:])
        #expect(!FileManager.default.fileExists(atPath: scratch.path + "/../escape"))
        #expect(try sn.list(SnapshotFilter(parsing: [])).map(\.key).sorted() == ["../../../../escape", "c", "v"])
        #expect(try sn.driver.listLayers().count == 3)
    }

    @Test("update replaces labels, or only the fields of a mask; times move")
    func update() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        _ = try sn.prepare(key: "a", parent: "", labels: ["one": "1", "two": "2"])
        let before = try sn.stat(key: "a")
        let masked = try sn.update(key: "a", labels: ["two": "22", "three": "3"], fields: ["labels.two"])
        #expect(masked.labels == ["one": "1", "two": "22"])
        #expect(masked.updated >= before.updated && masked.created == before.created)
        let all = try sn.update(key: "a", labels: ["z": "0"], fields: [])
        #expect(all.labels == ["z": "0"])
    }

    @Test("a stack too deep for one page of mount data is mounted by the snapshotter and served as a bind mount")
    func deepStack() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        var parent = ""
        for i in 0..<130 {
            _ = try sn.prepare(key: "l\(i)-tmp", parent: parent, labels: [:])
            try sn.commit(name: "l\(i)", key: "l\(i)-tmp", labels: [:])
            parent = "l\(i)"
        }
        let specs = try sn.prepare(key: "top", parent: parent, labels: [:])
        #expect(specs.count == 1 && specs[0].type == "bind")
        #expect(Mounts.isMountPoint(FilePath(specs[0].source)))
        let target = scratch.sub("mnt")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try mountAll(specs, at: target)
        try "deep".write(toFile: target + "/f", atomically: false, encoding: .utf8)
        umount2(target, 0)
        #expect(try sn.mounts(key: "top") == specs)
        try sn.remove(key: "top")
        #expect(!Mounts.isMountPoint(FilePath(specs[0].source)))
    }

    @Test("a restart keeps every snapshot, and removes a layer no snapshot names")
    func restart() throws {
        let scratch = Scratch()
        do {
            let sn = try makeSnapshotter(scratch)
            _ = try sn.prepare(key: "a", parent: "", labels: ["k": "v"])
            try sn.commit(name: "c", key: "a", labels: ["k": "v"])
            _ = try sn.prepare(key: "b", parent: "c", labels: [:])
            try sn.driver.createReadWrite(try LayerID("snap-999"), parent: nil, options: CreateOptions())
            try sn.driver.createReadWrite(try LayerID("snap-1000"), parent: try LayerID("snap-999"), options: CreateOptions())
        }
        let again = try makeSnapshotter(scratch)
        let records = try again.list(SnapshotFilter(parsing: []))
        #expect(records.map(\.key) == ["c", "b"])
        #expect(records.first?.labels == ["k": "v"])
        #expect(try again.driver.listLayers().map(\.rawValue) == ["snap-1", "snap-2"])
    }

    @Test("a restart drops a snapshot whose layer is gone (a machine crash rolled back its removal's last transaction), children first")
    func restartAfterRolledBackRemoval() throws {
        let scratch = Scratch()
        do {
            let sn = try makeSnapshotter(scratch)
            _ = try sn.prepare(key: "a", parent: "", labels: [:])
            try sn.commit(name: "base", key: "a", labels: [:])
            _ = try sn.prepare(key: "b", parent: "base", labels: [:])
            try sn.commit(name: "mid", key: "b", labels: [:])
            _ = try sn.prepare(key: "top", parent: "mid", labels: [:])
            _ = try sn.prepare(key: "other", parent: "base", labels: [:])
            // What the metadata's rollback leaves: the rows of "top" and "mid", their layers gone.
            try sn.driver.remove(sn.stat(key: "top").layer)
            try sn.driver.remove(sn.stat(key: "mid").layer)
        }
        let again = try makeSnapshotter(scratch)
        #expect(try again.list(SnapshotFilter(parsing: [])).map(\.key) == ["base", "other"])
        #expect(throws: StorageError.self) { try again.stat(key: "mid") }
        _ = try again.mounts(key: "other")
    }

    @Test("usage counts the snapshot's own files")
    func usage() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        let specs = try sn.prepare(key: "a", parent: "", labels: [:])
        try Data(count: 100_000).write(to: URL(fileURLWithPath: specs[0].source + "/blob"))
        let usage = try sn.usage(key: "a")
        #expect(usage.bytes >= 100_000 && usage.inodes >= 1)
    }

    @Test("a size limit where the filesystem has no project quota is a clear error, and leaves nothing")
    func quotaWithoutProjectQuota() throws {
        let scratch = Scratch()
        let sn = try makeSnapshotter(scratch)
        try #require(!sn.driver.quota.isSupported, "this host's /var/tmp has project quotas; the kernel tier tests limits")
        let error = #expect(throws: StorageError.self) {
            _ = try sn.prepare(key: "a", parent: "", labels: [SnapshotLabels.size: "10M"])
        }
        #expect(error?.code == .unsupported)
        #expect(error?.description.contains("quota") == true)
        #expect(try sn.list(SnapshotFilter(parsing: [])).isEmpty)
        #expect(try sn.driver.listLayers().isEmpty)
        #expect(throws: StorageError.self) { _ = try makeSnapshotter(Scratch(), configText: "size = \"1G\"\n") }
    }
}
