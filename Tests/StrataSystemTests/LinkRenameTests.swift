import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("linkat, symlinkat, readlinkat, renameat2, unlinkat")
struct LinkRenameTests {
    @Test func linkatByNameAcrossDirectories() throws {
        let dir = try TemporaryDirectory()
        try dir.write("original", "same bytes")
        try dir.descriptor.makeDirectory(at: "other")
        let other = try dir.descriptor.openDirectory(at: "other")
        defer { other.closeQuietly() }
        try dir.descriptor.makeHardLink(from: "original", to: "copy", in: other)
        try dir.descriptor.makeHardLink(from: "original", to: "sibling")
        let a = try dir.descriptor.status(at: "original")
        let b = try other.status(at: "copy")
        #expect(a.inode == b.inode)
        #expect(a.linkCount == 3)
        #expect(try dir.read("sibling") == "same bytes")
        expectErrno(.fileExists) { try dir.descriptor.makeHardLink(from: "original", to: "sibling") }

        // linkat without AT_SYMLINK_FOLLOW links the symlink itself.
        try dir.descriptor.makeSymbolicLink(at: "symlink", target: "original")
        try dir.descriptor.makeHardLink(from: "symlink", to: "symlink-link")
        let linked = try dir.descriptor.status(at: "symlink-link")
        #expect(linked.kind == .symlink)
        #expect(try linked.inode == dir.descriptor.status(at: "symlink").inode)
        #expect(try dir.descriptor.status(at: "original").linkCount == 3)
    }

    @Test(needsRoot) func linkatWithEmptyPathLinksAnOpenFile() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "by descriptor")
        let pathOnly = try dir.descriptor.open(at: "file", flags: openPathOnly)
        try pathOnly.makeHardLink(to: "linked", in: dir.descriptor)
        pathOnly.closeQuietly()
        #expect(try dir.descriptor.status(at: "linked").inode == dir.descriptor.status(at: "file").inode)
        #expect(try dir.read("linked") == "by descriptor")

        // An anonymous O_TMPFILE file gets its first name this way.
        let anonymous = try dir.descriptor.open(at: ".", flags: O_RDWR | openTemporaryFile, permissions: 0o640)
        try Array("was anonymous".utf8).withUnsafeBytes { try anonymous.writeFully($0) }
        try anonymous.makeHardLink(to: "named", in: dir.descriptor)
        anonymous.closeQuietly()
        #expect(try dir.read("named") == "was anonymous")
        #expect(try dir.descriptor.status(at: "named").permissions.rawValue == 0o640)
    }

    @Test(arguments: [1, 255, 256, 257, 300, 1023, 1024, 4000])
    func symlinkTargetsOfAnyLengthReadBack(length: Int) throws {
        let dir = try TemporaryDirectory()
        // A target of `length` bytes made of path components ("aaaa/bbbb/…").
        var target = ""
        var letter = UInt8(ascii: "a")
        while target.utf8.count < length {
            if !target.isEmpty { target += "/" }
            target += String(repeating: Character(UnicodeScalar(letter)), count: 50)
            letter = letter == UInt8(ascii: "z") ? UInt8(ascii: "a") : letter + 1
        }
        target = String(target.utf8.prefix(length))!
        #expect(target.utf8.count == length)
        try dir.descriptor.makeSymbolicLink(at: "link", target: target)
        #expect(try dir.descriptor.readSymbolicLink(at: "link") == target)
        #expect(try dir.descriptor.status(at: "link").size == Int64(length))
    }

    @Test func readlinkatOnNonLinkFails() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        expectErrno(.invalidArgument) { try dir.descriptor.readSymbolicLink(at: "file") }
        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.readSymbolicLink(at: "none") }
        try dir.descriptor.makeSymbolicLink(at: "unicode", target: "/dir/naïve ✓")
        #expect(try dir.descriptor.readSymbolicLink(at: "unicode") == "/dir/naïve ✓")
        expectErrno(.fileExists) { try dir.descriptor.makeSymbolicLink(at: "unicode", target: "x") }
    }

    @Test func renameat2NoReplaceExchangeAndPlain() throws {
        let dir = try TemporaryDirectory()
        try dir.write("a", "A")
        try dir.write("b", "B")
        expectErrno(.fileExists) { try dir.descriptor.rename("a", to: "b", flags: .noReplace) }
        #expect(try dir.read("a") == "A")
        #expect(try dir.read("b") == "B")

        try dir.descriptor.rename("a", to: "b", flags: .exchange)
        #expect(try dir.read("a") == "B")
        #expect(try dir.read("b") == "A")

        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.rename("a", to: "c", flags: .exchange) }

        // A plain rename replaces; noReplace into a fresh name works; across directories too.
        try dir.descriptor.rename("a", to: "b")
        #expect(!dir.descriptor.exists(at: "a"))
        #expect(try dir.read("b") == "B")
        try dir.descriptor.rename("b", to: "c", flags: .noReplace)
        try dir.descriptor.makeDirectory(at: "sub")
        let sub = try dir.descriptor.openDirectory(at: "sub")
        defer { sub.closeQuietly() }
        try dir.descriptor.rename("c", to: "moved", in: sub)
        #expect(try dir.read("sub/moved") == "B")

        // Directories swap as well.
        try dir.descriptor.makeDirectory(at: "d1")
        try dir.descriptor.makeDirectory(at: "d2")
        try dir.write("d1/marker", "1")
        try dir.descriptor.rename("d1", to: "d2", flags: .exchange)
        #expect(try dir.read("d2/marker") == "1")
        #expect(!dir.descriptor.exists(at: "d1/marker"))
    }

    @Test(needsRoot) func renameat2WhiteoutLeavesACharacterDevice() throws {
        let dir = try TemporaryDirectory()
        try dir.write("old", "x")
        try dir.descriptor.rename("old", to: "new", flags: .whiteout)
        let status = try dir.descriptor.status(at: "old")
        #expect(status.kind == .characterDevice)
        #expect(status.specialDevice == 0)
        #expect(try dir.read("new") == "x")
    }

    @Test func unlinkatFilesAndDirectories() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        try dir.descriptor.makeDirectory(at: "empty")
        try dir.descriptor.makeDirectory(at: "full")
        try dir.write("full/inner", "y")

        expectErrno(.isDirectory) { try dir.descriptor.remove(at: "empty") }
        expectErrno(.notDirectory) { try dir.descriptor.remove(at: "file", directory: true) }
        expectErrno(.directoryNotEmpty) { try dir.descriptor.remove(at: "full", directory: true) }
        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.remove(at: "none") }

        try dir.descriptor.remove(at: "file")
        try dir.descriptor.remove(at: "empty", directory: true)
        #expect(!dir.descriptor.exists(at: "file"))
        #expect(!dir.descriptor.exists(at: "empty"))
        #expect(dir.descriptor.exists(at: "full/inner"))

        // A dangling symlink exists, and unlinking it leaves its target's name alone.
        try dir.descriptor.makeSymbolicLink(at: "dangling", target: "nowhere")
        #expect(dir.descriptor.exists(at: "dangling"))
        try dir.descriptor.makeSymbolicLink(at: "tofull", target: "full")
        try dir.descriptor.remove(at: "tofull")
        #expect(dir.descriptor.exists(at: "full/inner"))
    }
}
