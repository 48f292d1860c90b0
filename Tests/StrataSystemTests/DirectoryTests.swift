import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Directory enumeration and tree removal")
struct DirectoryTests {
    @Test(needsRoot) func getdentsListsThousandsOfEntriesWithTheirKinds() throws {
        let dir = try TemporaryDirectory()
        let d = dir.descriptor
        var expected: [String: FileKind] = [:]
        // 5,000 files with names up to 255 bytes fill many 32 KiB reads.
        for i in 0..<5_000 {
            let name = i % 10 == 0 ? "file-\(i)-" + String(repeating: "x", count: 240 - String(i).count) : "file-\(i)"
            let fd = try d.open(at: FilePath(name), .writeOnly, options: [.create], permissions: .init(rawValue: 0o644))
            fd.closeQuietly()
            expected[name] = .regular
        }
        for i in 0..<50 {
            try d.makeDirectory(at: FilePath("dir-\(i)"))
            expected["dir-\(i)"] = .directory
        }
        try d.makeSymbolicLink(at: "symlink", target: "file-1")
        try d.makeNode(at: "fifo", kind: .fifo, permissions: .init(rawValue: 0o644))
        try d.makeNode(at: "char", kind: .characterDevice, permissions: .init(rawValue: 0))
        try d.makeNode(at: "block", kind: .blockDevice, permissions: .init(rawValue: 0o600), device: makeDeviceNumber(major: 7, minor: 1))
        try d.makeNode(at: "socket", kind: .socket, permissions: .init(rawValue: 0o600))
        expected["symlink"] = .symlink
        expected["fifo"] = .fifo
        expected["char"] = .characterDevice
        expected["block"] = .blockDevice
        expected["socket"] = .socket

        let entries = try d.directoryEntries()
        #expect(entries.count == 5_055)
        #expect(!entries.contains { $0.name == "." || $0.name == ".." })
        #expect(Set(entries.map(\.name)).count == entries.count)
        var found: [String: FileKind] = [:]
        for entry in entries { found[entry.name] = entry.kind }
        #expect(found == expected)
        // The inode in the entry is the file's.
        let sample = try #require(entries.first { $0.name == "file-4321" })
        #expect(sample.inode == (try d.status(at: "file-4321").inode))
        #expect(entries.first { $0.name.hasPrefix("file-10-") }?.name.utf8.count == 246)

        // A second call starts over (the offset is rewound).
        #expect(try d.directoryEntries().count == 5_055)
    }

    @Test func emptyDirectoryHasNoEntriesAndBodyErrorsStopTheWalk() throws {
        let dir = try TemporaryDirectory()
        #expect(try dir.descriptor.directoryEntries() == [])
        for i in 0..<10 { try dir.write("f\(i)", "") }
        var seen = 0
        expectErrno(.canceled) {
            try dir.descriptor.forEachDirectoryEntry { _ throws(Errno) in
                seen += 1
                if seen == 3 { throw Errno.canceled }
            }
        }
        #expect(seen == 3)
        // A descriptor that is not a directory.
        let file = try dir.descriptor.open(at: "f0", .readOnly)
        defer { file.closeQuietly() }
        expectErrno(.notDirectory) { try file.directoryEntries() }
    }

    @Test(needsRoot) func removeTreeRemovesEverythingAndFollowsNoSymlink() throws {
        let dir = try TemporaryDirectory()
        let d = dir.descriptor
        // Things outside the tree that symlinks inside point to.
        try d.makeDirectory(at: "outside")
        try dir.write("outside/keep", "must survive")

        try d.makeDirectory(at: "tree")
        var path = "tree"
        for level in 0..<40 {
            path += "/level\(level)"
            try d.makeDirectory(at: FilePath(path))
            try dir.write(path + "/file", "\(level)")
        }
        for i in 0..<500 { try dir.write("tree/wide-\(i)", "w") }
        try d.makeSymbolicLink(at: "tree/to-outside-dir", target: dir.path("outside").string)
        try d.makeSymbolicLink(at: "tree/level0/relative-out", target: "../../outside")
        try d.makeNode(at: "tree/fifo", kind: .fifo, permissions: .init(rawValue: 0o644))
        try d.makeNode(at: "tree/whiteout", kind: .characterDevice, permissions: .init(rawValue: 0))
        // A read-only directory still empties (root ignores the mode; the walk must not chmod).
        try d.makeDirectory(at: "tree/readonly")
        try dir.write("tree/readonly/inner", "r")
        try d.changeMode(at: "tree/readonly", permissions: .init(rawValue: 0o555))

        try d.removeTree(at: "tree")
        #expect(!d.exists(at: "tree"))
        #expect(try dir.read("outside/keep") == "must survive")

        // Missing paths are not an error; a symlink to a directory is removed as a link.
        try d.removeTree(at: "tree")
        try d.makeSymbolicLink(at: "link-to-outside", target: "outside")
        try d.removeTree(at: "link-to-outside")
        #expect(!d.exists(at: "link-to-outside"))
        #expect(try dir.read("outside/keep") == "must survive")
        // A plain file.
        try dir.write("single", "s")
        try d.removeTree(at: "single", kind: .regular)
        #expect(!d.exists(at: "single"))
    }

    @Test(needsRoot) func removeTreeDoesNotReachIntoAMountBelowIt() throws {
        let dir = try TemporaryDirectory()
        let d = dir.descriptor
        try d.makeDirectory(at: "precious")
        try dir.write("precious/data", "on another mount")
        try d.makeDirectory(at: "tree")
        try d.makeDirectory(at: "tree/merged")
        try dir.write("tree/file", "f")
        // A bind mount (same filesystem, same st_dev) and a tmpfs below the tree.
        try Mounts.mount(source: dir.path("precious").string, target: dir.path("tree/merged"), type: nil, flags: .bind)
        defer { try? Mounts.unmount(dir.path("tree/merged"), flags: .detach) }
        try d.makeDirectory(at: "tree/tmp")
        try Mounts.mount(source: "strata-test", target: dir.path("tree/tmp"), type: "tmpfs")
        defer { try? Mounts.unmount(dir.path("tree/tmp"), flags: .detach) }
        try dir.write("tree/tmp/on-tmpfs", "t")

        expectErrno(.improperLink) { try d.removeTree(at: "tree") }
        #expect(try dir.read("precious/data") == "on another mount")
        #expect(try dir.read("tree/merged/data") == "on another mount")
        #expect(try dir.read("tree/tmp/on-tmpfs") == "t")

        // Unmounted, the same call removes everything.
        try Mounts.unmount(dir.path("tree/merged"))
        try Mounts.unmount(dir.path("tree/tmp"))
        try d.removeTree(at: "tree")
        #expect(!d.exists(at: "tree"))
        #expect(try dir.read("precious/data") == "on another mount")
    }

    @Test func removeContentsKeepsTheDirectory() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "box")
        try dir.descriptor.makeDirectory(at: "box/sub")
        try dir.write("box/sub/a", "a")
        try dir.write("box/b", "b")
        let box = try dir.descriptor.openDirectory(at: "box")
        defer { box.closeQuietly() }
        try box.removeContents()
        #expect(try box.directoryEntries() == [])
        #expect(try dir.descriptor.status(at: "box").kind == .directory)
    }
}
