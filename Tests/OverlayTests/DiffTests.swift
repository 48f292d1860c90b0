import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// A snapshot of a directory tree: every path with its kind, size and contents' first bytes.
func treeSnapshot(_ root: FilePath) -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: root.string) else { return [] }
    var lines: [String] = []
    while let path = enumerator.nextObject() as? String {
        let attributes = enumerator.fileAttributes ?? [:]
        let contents = (try? Data(contentsOf: URL(fileURLWithPath: root.appending(path).string))).map { Array($0.prefix(32)) } ?? []
        lines.append("\(path) \(attributes[.type] ?? "") \(attributes[.size] ?? "") \(contents)")
    }
    return lines.sorted()
}

func writeTar(_ path: FilePath, python: String) throws {
    try Files.shell("python3 - <<'PY'\nimport tarfile, io\nt = tarfile.open('\(path)', 'w')\n"
        + "def add(name, data=b'', **kw):\n    i = tarfile.TarInfo(name)\n    for k, v in kw.items(): setattr(i, k, v)\n"
        + "    i.size = len(data) if i.type == tarfile.REGTYPE else 0\n    t.addfile(i, io.BytesIO(data) if i.type == tarfile.REGTYPE else None)\n"
        + python + "\nt.close()\nPY")
}

@Suite("Diffs and staged applies", needsRoot)
struct DiffTests {
    @Test("a hostile or malformed tar leaves the store unchanged", arguments: [
        "add('ok', b'fine')\nadd('../escape', b'x')",
        "add('ok', b'fine')\nadd('link', type=tarfile.SYMTYPE, linkname='/etc')\nadd('link/passwd', b'pwned')",
        "add('ok', b'fine')\nadd('hard', type=tarfile.LNKTYPE, linkname='../../outside')",
        "add('ok', b'fine')\nadd('/abs/../../x', b'x')",
        "TRUNCATE",
    ])
    func hostileTar(_ script: String) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base"), layer = try LayerID("target")
        try driver.create(base, parent: nil, options: CreateOptions())
        try Files.write("base", at: "keep", in: store.home.appending("base/diff"))
        try driver.create(layer, parent: base, options: CreateOptions())
        try Files.write("before", at: "existing", in: store.home.appending("target/diff"))
        let tar = store.root.appending("hostile.tar")
        if script == "TRUNCATE" {
            try Files.shell("mkdir -p \(store.root)/src && head -c 200000 /dev/urandom > \(store.root)/src/big")
            try Files.shell("tar -C \(store.root)/src -czf \(store.root)/full.tgz . && head -c 3000 \(store.root)/full.tgz > \(tar)")
        } else {
            try writeTar(tar, python: script)
        }
        let before = treeSnapshot(store.home)
        #expect(!before.isEmpty, "the store's home could not be listed: comparing it would prove nothing")
        let fd = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd.close() }
        #expect(throws: StorageError.self) {
            try driver.applyDiff(layer, parent: base, from: fd, options: ApplyDiffOptions())
        }
        #expect(treeSnapshot(store.home) == before, "the failed apply changed the store")
        #expect(!FileManager.default.fileExists(atPath: store.root.appending("escape").string))
        #expect(!FileManager.default.fileExists(atPath: "/abs"))
        #expect(try driver.listLayers() == [base, layer])
    }

    @Test("a diff made against another layer than the parent is applied through a mount, atomically")
    func nonParentApply() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 3)
        try Files.write("old", at: "dir/keep", in: store.home.appending("layer2/diff"))
        let tar = store.root.appending("x.tar")
        // Made against layer0: it deletes file1 (which layer1 holds), replaces file2 (layer2's
        // own) and dir's contents (opaque), and adds x.
        try writeTar(tar, python: """
            add('x', b'x')
            add('.wh.file1')
            add('file2', b'replaced')
            add('dir', type=tarfile.DIRTYPE, mode=0o755)
            add('dir/.wh..wh..opq')
            add('dir/new', b'new')
            """)
        let fd = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd.close() }
        let size = try driver.applyDiff(layers[2], parent: layers[0], from: fd, options: ApplyDiffOptions())
        #expect(size == 12)
        let merged = try driver.get(layers[2], options: MountOptions(readOnly: true))
        #expect(try Files.list(in: merged) == ["dir", "file0", "file2", "x"])
        #expect(Files.read("file2", in: merged) == "replaced")
        #expect(try Files.list("dir", in: merged) == ["new"])
        try driver.put(layers[2])
        #expect(Files.read("file1", in: store.home.appending("layer1/diff")) == "1", "the parent was changed")
        #expect(store.mounts().isEmpty)
        #expect(try Files.list("staging", in: store.home).isEmpty)

        // A hostile stream through the same path changes nothing.
        let hostile = store.root.appending("hostile.tar")
        try writeTar(hostile, python: "add('y', b'y')\nadd('../escape', b'x')")
        let before = treeSnapshot(store.home)
        #expect(!before.isEmpty, "the store's home could not be listed: comparing it would prove nothing")
        let fd2 = try FileDescriptor.open(hostile, .readOnly)
        defer { try? fd2.close() }
        #expect(throws: StorageError.self) {
            try driver.applyDiff(layers[2], parent: nil, from: fd2, options: ApplyDiffOptions())
        }
        #expect(treeSnapshot(store.home) == before)
        #expect(store.mounts().isEmpty)
    }

    @Test("staged apply: a differ fills a staging directory that becomes a layer")
    func stagedApply() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base"), layer = try LayerID("staged")
        try driver.create(base, parent: nil, options: CreateOptions())
        try Files.write("base", at: "etc/base", in: store.home.appending("base/diff"))
        try driver.create(layer, parent: base, options: CreateOptions())
        let tar = store.root.appending("layer.tar")
        try writeTar(tar, python: "add('etc', type=tarfile.DIRTYPE, mode=0o755)\nadd('etc/staged', b'staged')\nadd('etc/.wh.base')")
        let fd = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd.close() }
        let output = try driver.applyDiffWithDiffer(options: DifferOptions(), differ: TarDiffer(input: fd))
        #expect(output.size == 6)
        #expect(output.target.string.hasPrefix(store.home.appending("staging").string))
        #expect(Files.read("etc/staged", in: output.target) == "staged")
        // cleanup in another driver (another process) must not take a staging directory in use
        try store.driver().cleanup()
        #expect(Files.exists("etc/staged", in: output.target))
        try driver.applyDiffFromStagingDirectory(layer, parent: base, output: output, options: DifferOptions())
        #expect(!FileManager.default.fileExists(atPath: output.target.string))
        let merged = try driver.get(layer, options: MountOptions(readOnly: true))
        #expect(Files.read("etc/staged", in: merged) == "staged")
        #expect(!Files.exists("etc/base", in: merged))
        try driver.put(layer)
        #expect(try driver.differTarget(layer) == store.home.appending("staged/diff"))

        // A staging directory that is abandoned is removed by cleanupStagingDirectory, and a
        // stale one (its driver gone) by cleanup.
        let fd2 = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd2.close() }
        let abandoned = try driver.applyDiffWithDiffer(options: DifferOptions(), differ: TarDiffer(input: fd2))
        try driver.cleanupStagingDirectory(abandoned.target)
        #expect(!FileManager.default.fileExists(atPath: abandoned.target.removingLastComponent().string))
        do {
            let other = try store.driver()
            let fd3 = try FileDescriptor.open(tar, .readOnly)
            defer { try? fd3.close() }
            _ = try other.applyDiffWithDiffer(options: DifferOptions(), differ: TarDiffer(input: fd3))
        }
        try driver.cleanup()
        #expect(try Files.list("staging", in: store.home).isEmpty)
    }

    @Test("diffGetter opens the layer's own files and nothing outside it")
    func diffGetter() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layer = try LayerID("g")
        try driver.create(layer, parent: nil, options: CreateOptions())
        try Files.write("inside", at: "dir/file", in: store.home.appending("g/diff"))
        try FileManager.default.createSymbolicLink(atPath: store.home.appending("g/diff/escape").string,
                                                   withDestinationPath: "../../../../../../etc/hostname")
        let getter = try driver.diffGetter(layer)
        let fd = try getter.open("/dir/file")
        let bytes = try fd.readToEnd()
        try fd.close()
        #expect(String(decoding: bytes, as: UTF8.self) == "inside")
        #expect(throws: StorageError.self) { try getter.open("missing") }
        #expect(throws: StorageError.self) { try getter.open("escape") }
    }
}
