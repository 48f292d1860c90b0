import Foundation
import GraphDriver
import SystemPackage

/// Checks any `DiffDriver` against the behaviour every driver must have. Each check makes its
/// own driver from the factory and tears it down.
public enum DriverConformance {
    /// Every check, by name, for a test target to run one by one.
    public static let all: [(name: String, run: @Sendable (DriverFactory) throws -> Void)] = [
        ("createEmpty", createEmpty), ("createBase", createBase), ("createSnapshot", createSnapshot),
        ("createFromTemplate", createFromTemplate), ("deepLayerRead128", { try deepLayerRead($0, depth: 128) }),
        ("diffApply", diffApply), ("changes", changes), ("echo", echo), ("diffExport", diffExport),
        ("listLayers", listLayers), ("rootMode", rootMode), ("explicitParent", explicitParent),
    ]

    static func with(_ factory: DriverFactory, _ body: (any DiffDriver) throws -> Void) throws {
        let harness = try factory()
        defer { harness.teardown() }
        try body(harness.driver)
    }

    /// An empty base layer exists, mounts empty, is listed, and is removed (twice, harmlessly).
    public static func createEmpty(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.create(id("empty"), parent: nil, options: CreateOptions())
            try require(driver.exists(id("empty")), "the new layer does not exist")
            let listed = try driver.listLayers()
            try require(listed == [id("empty")], "listLayers: \(listed)")
            try driver.withMount(id("empty")) { root in
                let names = try Files.list(in: root)
                try require(names.isEmpty, "an empty layer shows \(names)")
            }
            try require(try driver.changes(id("empty"), parent: nil).isEmpty, "an empty layer has changes")
            try driver.remove(id("empty"))
            try require(!driver.exists(id("empty")), "the removed layer still exists")
            try driver.remove(id("empty"))
            do {
                try driver.create(id("empty"), parent: nil, options: CreateOptions())
                try driver.create(id("empty"), parent: nil, options: CreateOptions())
                throw ConformanceFailure("creating an existing layer succeeded")
            } catch let error as StorageError {
                try require(error.code == .alreadyExists, "creating an existing layer: \(error)")
            }
            do {
                try driver.create(id("orphan"), parent: id("missing"), options: CreateOptions())
                throw ConformanceFailure("creating a layer on a missing parent succeeded")
            } catch let error as StorageError {
                try require(error.code == .notFound, "creating on a missing parent: \(error)")
            }
            try require(!driver.exists(id("orphan")), "a failed create left a layer")
        }
    }

    /// A base layer keeps what was written into its mount.
    public static func createBase(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in
                try Files.write("one", at: "a", in: root)
                try Files.write("two", at: "dir/b", in: root)
                try FileManager.default.createSymbolicLink(atPath: root.appending("link").string, withDestinationPath: "a")
            }
            try driver.withMount(id("base")) { root in
                try require(Files.read("a", in: root) == "one", "a lost its contents")
                try require(Files.read("dir/b", in: root) == "two", "dir/b lost its contents")
                try require(Files.read("link", in: root) == "one", "the symlink does not lead to a")
            }
            let changes = try driver.changes(id("base"), parent: nil)
            try require(changes == [Change(path: "/a", kind: .add), Change(path: "/dir", kind: .add),
                                    Change(path: "/dir/b", kind: .add), Change(path: "/link", kind: .add)],
                        "changes: \(changes)")
        }
    }

    /// A snapshot shows its parent's files, and writes to it leave the parent alone.
    public static func createSnapshot(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in try Files.write("base", at: "f", in: root) }
            try driver.createReadWrite(id("snap"), parent: id("base"), options: CreateOptions())
            try driver.withMount(id("snap")) { root in
                try require(Files.read("f", in: root) == "base", "the snapshot does not show its parent's file")
                try Files.write("snap", at: "f", in: root)
                try Files.write("new", at: "g", in: root)
            }
            try driver.withMount(id("base")) { root in
                try require(Files.read("f", in: root) == "base", "writing the snapshot changed its parent")
                try require(!Files.exists("g", in: root), "the parent shows the snapshot's new file")
            }
            try driver.withMount(id("snap"), options: MountOptions(readOnly: true)) { root in
                try require(Files.read("f", in: root) == "snap" && Files.read("g", in: root) == "new", "snapshot lost writes")
                do {
                    try Files.write("x", at: "h", in: root)
                    throw ConformanceFailure("a read-only mount took a write")
                } catch is CocoaError {}
            }
            let changes = try driver.changes(id("snap"), parent: id("base"))
            try require(changes == [Change(path: "/f", kind: .modify), Change(path: "/g", kind: .add)], "changes: \(changes)")
        }
    }

    /// A layer made from a template holds the template's own files over the same parent.
    public static func createFromTemplate(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in
                try Files.write("base", at: "f", in: root)
                try Files.write("gone", at: "d/gone", in: root)
            }
            try driver.createReadWrite(id("template"), parent: id("base"), options: CreateOptions())
            try driver.withMount(id("template")) { root in
                try Files.write("template", at: "t/x", in: root)
                try Files.remove("d/gone", in: root)
            }
            try driver.createFromTemplate(id("copy"), template: id("template"), parent: id("base"),
                                          options: CreateOptions(), readWrite: true)
            try driver.withMount(id("copy")) { root in
                try require(Files.read("f", in: root) == "base", "the copy lost its parent's file")
                try require(Files.read("t/x", in: root) == "template", "the copy lost the template's file")
                try require(!Files.exists("d/gone", in: root), "the copy lost the template's deletion")
                try Files.write("copy", at: "t/x", in: root)
            }
            try driver.withMount(id("template")) { root in
                try require(Files.read("t/x", in: root) == "template", "writing the copy changed the template")
            }
            try require(try driver.changes(id("copy"), parent: id("base")) == driver.changes(id("template"), parent: id("base")),
                        "the copy's changes differ from the template's")
        }
    }

    /// A chain of `depth` layers, each adding one file: the top shows them all.
    public static func deepLayerRead(_ factory: DriverFactory, depth: Int) throws {
        try with(factory) { driver in
            var parent: LayerID?
            for i in 0..<depth {
                let layer = id("layer\(i)")
                try driver.createReadWrite(layer, parent: parent, options: CreateOptions())
                try driver.withMount(layer) { root in try Files.write("\(i)", at: "file\(i)", in: root) }
                parent = layer
            }
            try driver.withMount(parent!) { root in
                let names = try Files.list(in: root)
                try require(names.count == depth, "the top layer shows \(names.count) files, not \(depth)")
                for i in 0..<depth {
                    try require(Files.read("file\(i)", in: root) == "\(i)", "file\(i) is wrong")
                }
            }
        }
    }

    /// Applying a tar stream fills the layer; its whiteouts hide the parent's files.
    public static func diffApply(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            let scratch = try Files.temporaryDirectory("strata-tar")
            defer { try? FileManager.default.removeItem(atPath: scratch.string) }
            try Files.write("hello", at: "base/etc/hello", in: scratch)
            try Files.write("bye", at: "base/etc/bye", in: scratch)
            try Files.shell("tar -C \(scratch)/base -cf \(scratch)/base.tar .")
            try driver.create(id("base"), parent: nil, options: CreateOptions())
            let size = try apply(driver, id("base"), nil, tar: scratch.appending("base.tar"))
            try require(size == 8, "applied size \(size), expected 8")
            try require(try driver.diffSize(id("base"), parent: nil) == 8, "diffSize after apply")

            try Files.write("new", at: "upper/etc/new", in: scratch)
            try Files.write("", at: "upper/etc/.wh.bye", in: scratch)
            try Files.shell("tar -C \(scratch)/upper -cf \(scratch)/upper.tar .")
            try driver.create(id("upper"), parent: id("base"), options: CreateOptions())
            _ = try apply(driver, id("upper"), id("base"), tar: scratch.appending("upper.tar"))
            try driver.withMount(id("upper"), options: MountOptions(readOnly: true)) { root in
                try require(Files.read("etc/hello", in: root) == "hello", "the parent's file is hidden")
                try require(Files.read("etc/new", in: root) == "new", "the applied file is missing")
                try require(!Files.exists("etc/bye", in: root), "the whiteout did not hide etc/bye")
                try require(!Files.exists("etc/.wh.bye", in: root), "the whiteout shows as a file")
            }
            let changes = try driver.changes(id("upper"), parent: id("base"))
            try require(changes == [Change(path: "/etc", kind: .modify), Change(path: "/etc/bye", kind: .delete),
                                    Change(path: "/etc/new", kind: .add)], "changes: \(changes)")
        }
    }

    static func apply(_ driver: any DiffDriver, _ layer: LayerID, _ parent: LayerID?, tar: FilePath) throws -> Int64 {
        let fd = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd.close() }
        return try driver.applyDiff(layer, parent: parent, from: fd, options: ApplyDiffOptions())
    }

    /// Modifications, additions and deletions against the parent.
    public static func changes(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in
                for path in ["a", "b", "dir/c", "keep/k"] { try Files.write(path, at: path, in: root) }
            }
            try driver.createReadWrite(id("top"), parent: id("base"), options: CreateOptions())
            try driver.withMount(id("top")) { root in
                try Files.write("changed", at: "a", in: root)
                try Files.remove("b", in: root)
                try Files.write("d", at: "dir/d", in: root)
            }
            let changes = try driver.changes(id("top"), parent: id("base"))
            let expected = [Change(path: "/a", kind: .modify), Change(path: "/b", kind: .delete),
                            Change(path: "/dir", kind: .modify), Change(path: "/dir/d", kind: .add)]
            try require(changes == expected, "changes: \(changes), expected \(expected)")
        }
    }

    /// Removing a path at depths 0 to 9 in one layer and recreating it in the next: the
    /// recreating layer's changes list its ancestors as modified and the recreated entries as
    /// added; the removing layer's list the ancestors as modified and the path as deleted.
    public static func echo(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            for depth in 0..<10 {
                let ancestors = (0..<depth).map { "/" + (0...$0).map { "d\($0)" }.joined(separator: "/") }
                let path = (ancestors.last ?? "") + "/echo"
                let relative = String(path.dropFirst())
                let base = id("base\(depth)"), removed = id("removed\(depth)"), recreated = id("recreated\(depth)")
                try driver.createReadWrite(base, parent: nil, options: CreateOptions())
                try driver.withMount(base) { root in try Files.write("old", at: relative + "/file", in: root) }
                try driver.createReadWrite(removed, parent: base, options: CreateOptions())
                try driver.withMount(removed) { root in try Files.remove(relative, in: root) }
                try driver.createReadWrite(recreated, parent: removed, options: CreateOptions())
                try driver.withMount(recreated) { root in
                    try require(!Files.exists(relative, in: root), "depth \(depth): the removed path shows")
                    try Files.write("new", at: relative + "/file", in: root)
                }
                let modified = ancestors.map { Change(path: $0, kind: .modify) }
                let removal = try driver.changes(removed, parent: base)
                let expectedRemoval = (modified + [Change(path: path, kind: .delete)]).sorted()
                try require(removal == expectedRemoval, "depth \(depth): removal changes \(removal), expected \(expectedRemoval)")
                let expected = (modified + [Change(path: path, kind: .add), Change(path: path + "/file", kind: .add)]).sorted()
                let changes = try driver.changes(recreated, parent: removed)
                try require(changes == expected, "depth \(depth): changes \(changes), expected \(expected)")
                try driver.withMount(recreated) { root in
                    try require(Files.read(relative + "/file", in: root) == "new", "depth \(depth): wrong file")
                }
            }
        }
    }

    /// A layer exported with `diff` and applied to a new layer on the same parent reproduces it;
    /// the changes against a grandparent (not the parent) are computed too.
    public static func diffExport(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in
                for path in ["a", "b", "dir/c"] { try Files.write(path, at: path, in: root) }
            }
            try driver.createReadWrite(id("top"), parent: id("base"), options: CreateOptions())
            try driver.withMount(id("top")) { root in
                try Files.write("changed", at: "a", in: root)
                try Files.remove("b", in: root)
                try Files.write("d", at: "dir/d", in: root)
            }
            let scratch = try Files.temporaryDirectory("strata-diff")
            defer { try? FileManager.default.removeItem(atPath: scratch.string) }
            let tar = scratch.appending("top.tar")
            let out = try FileDescriptor.open(tar, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
            let written = try driver.diff(id("top"), parent: id("base"), to: out, options: DiffOptions())
            try out.close()
            try require(written > 0, "diff wrote nothing")
            try driver.create(id("copy"), parent: id("base"), options: CreateOptions())
            let size = try apply(driver, id("copy"), id("base"), tar: tar)
            let topSize = try driver.diffSize(id("top"), parent: id("base"))
            try require(size == topSize, "applied \(size) bytes, diffSize says \(topSize)")
            let copyChanges = try driver.changes(id("copy"), parent: id("base"))
            let topChanges = try driver.changes(id("top"), parent: id("base"))
            try require(copyChanges == topChanges, "the re-applied layer's changes \(copyChanges) differ from \(topChanges)")
            try driver.withMount(id("copy"), options: MountOptions(readOnly: true)) { root in
                let names = try Files.list(in: root)
                try require(Files.read("a", in: root) == "changed" && !Files.exists("b", in: root)
                            && Files.read("dir/d", in: root) == "d" && Files.read("dir/c", in: root) == "dir/c",
                            "the re-applied layer shows \(names)")
            }
            // Against no parent (a full tree): everything the layer shows is an addition.
            let full = try driver.changes(id("top"), parent: nil)
            let expected = ["/a", "/dir", "/dir/c", "/dir/d"].map { Change(path: $0, kind: .add) }
            try require(full == expected, "changes against no parent: \(full)")
        }
    }

    /// A base layer's root is 0555, read-only or writable, as containers/storage makes it; a
    /// child's root has its parent's mode.
    public static func rootMode(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.create(id("ro"), parent: nil, options: CreateOptions())
            try driver.createReadWrite(id("rw"), parent: nil, options: CreateOptions())
            for layer in ["ro", "rw"] {
                let mode = try driver.withMount(id(layer), options: MountOptions(readOnly: true)) { try Files.mode(of: $0) }
                try require(mode == 0o555, "base layer \(layer)'s root is \(String(mode, radix: 8)), not 555")
            }
            try driver.withMount(id("rw")) { root in
                let mode = try Files.mode(of: root)
                try require(mode == 0o555, "a writable base layer's mounted root is \(String(mode, radix: 8)), not 555")
                guard chmod(root.string, 0o751) == 0 else { throw ConformanceFailure("chmod of the mounted root: errno \(errno)") }
            }
            try driver.create(id("child"), parent: id("rw"), options: CreateOptions())
            try driver.createReadWrite(id("rwchild"), parent: id("rw"), options: CreateOptions())
            for layer in ["child", "rwchild"] {
                let mode = try driver.withMount(id(layer), options: MountOptions(readOnly: true)) { try Files.mode(of: $0) }
                try require(mode == 0o751, "child \(layer)'s root is \(String(mode, radix: 8)), not its parent's 751")
            }
        }
    }

    /// Changes, sizes and tar streams against the parent the caller names: a grandparent, a
    /// sibling made from the same template, or none (an empty tree); a stream against another
    /// layer than the layer's parent applies too.
    public static func explicitParent(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            try driver.createReadWrite(id("base"), parent: nil, options: CreateOptions())
            try driver.withMount(id("base")) { root in
                try Files.write("a", at: "a", in: root)
                try Files.write("c", at: "dir/c", in: root)
            }
            try driver.createReadWrite(id("mid"), parent: id("base"), options: CreateOptions())
            try driver.withMount(id("mid")) { root in
                try Files.write("bb", at: "b", in: root)
                try Files.remove("a", in: root)
            }
            try driver.createReadWrite(id("template"), parent: id("mid"), options: CreateOptions())
            try driver.withMount(id("template")) { root in try Files.write("ttt", at: "t", in: root) }
            try driver.createFromTemplate(id("copy"), template: id("template"), parent: id("mid"),
                                          options: CreateOptions(), readWrite: false)

            let own = try driver.changes(id("copy"), parent: id("mid"))
            try require(own == [Change(path: "/t", kind: .add)], "changes against the parent: \(own)")
            let grand = try driver.changes(id("copy"), parent: id("base"))
            let expectedGrand = [Change(path: "/a", kind: .delete), Change(path: "/b", kind: .add), Change(path: "/t", kind: .add)]
            try require(grand == expectedGrand, "changes against the grandparent: \(grand), expected \(expectedGrand)")
            try require(try driver.diffSize(id("copy"), parent: id("base")) == 5, "diffSize against the grandparent")
            let sibling = try driver.changes(id("copy"), parent: id("template"))
            try require(sibling.isEmpty, "changes against the template it copies: \(sibling)")
            try require(try driver.diffSize(id("copy"), parent: id("template")) == 0, "diffSize against the template")
            let full = try driver.changes(id("copy"), parent: nil)
            let expectedFull = ["/b", "/dir", "/dir/c", "/t"].map { Change(path: $0, kind: .add) }
            try require(full == expectedFull, "changes against no parent: \(full), expected \(expectedFull)")
            try require(try driver.diffSize(id("copy"), parent: nil) == 6, "diffSize against no parent")

            let scratch = try Files.temporaryDirectory("strata-parent")
            defer { try? FileManager.default.removeItem(atPath: scratch.string) }
            func export(_ parent: LayerID?, _ name: String) throws -> FilePath {
                let tar = scratch.appending(name)
                let out = try FileDescriptor.open(tar, .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
                defer { try? out.close() }
                _ = try driver.diff(id("copy"), parent: parent, to: out, options: DiffOptions())
                return tar
            }
            // The full tree, applied as a base layer; the stream against the grandparent,
            // applied to a layer on the parent (the driver replays it).
            try driver.create(id("flat"), parent: nil, options: CreateOptions())
            _ = try apply(driver, id("flat"), nil, tar: try export(nil, "full.tar"))
            try driver.create(id("replayed"), parent: id("mid"), options: CreateOptions())
            _ = try apply(driver, id("replayed"), id("base"), tar: try export(id("base"), "grand.tar"))
            for layer in ["flat", "replayed"] {
                try driver.withMount(id(layer), options: MountOptions(readOnly: true)) { root in
                    let names = try Files.list(in: root)
                    try require(names == ["b", "dir", "t"] && Files.read("b", in: root) == "bb" && Files.read("t", in: root) == "ttt"
                                && Files.read("dir/c", in: root) == "c", "\(layer) shows \(names)")
                }
            }
            let replayed = try driver.changes(id("replayed"), parent: id("base"))
            try require(replayed == expectedGrand, "the replayed layer's changes against base: \(replayed)")
        }
    }

    /// `listLayers` names exactly the layers made and not removed.
    public static func listLayers(_ factory: DriverFactory) throws {
        try with(factory) { driver in
            var expected: [LayerID] = []
            var parent: LayerID?
            for i in 0..<6 {
                let layer = id("list-\(i)")
                if i % 2 == 0 {
                    try driver.create(layer, parent: parent, options: CreateOptions())
                } else {
                    try driver.createReadWrite(layer, parent: parent, options: CreateOptions())
                }
                expected.append(layer)
                parent = layer
            }
            try driver.remove(id("list-5"))
            expected.removeLast()
            let listed = try driver.listLayers()
            try require(listed.sorted() == expected.sorted(), "listLayers: \(listed)")
        }
    }
}
