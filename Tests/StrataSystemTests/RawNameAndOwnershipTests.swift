import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A name that is not UTF-8: "bad-" then bytes 0xFF 0xFE.
private let nonUTF8Name: [CChar] = [0x62, 0x61, 0x64, 0x2D, -1, -2, 0]

@Suite("Raw names, no-follow ownership calls, user namespaces", needsRoot)
struct RawNameAndOwnershipTests {
    @Test func rawEntriesKeepNamesThatAreNotUTF8() throws {
        let dir = try TemporaryDirectory()
        let fd = try nonUTF8Name.withUnsafeBufferPointer {
            try dir.descriptor.open(atRawName: $0.baseAddress!, flags: O_WRONLY | O_CREAT | O_EXCL)
        }
        fd.closeQuietly()
        try dir.write("plain", "p")

        let raw = try dir.descriptor.rawDirectoryEntries()
        #expect(raw.count == 2)
        let bad = try #require(raw.first { $0.name != "plain" })
        let bytes = bad.name.withPlatformString { Array(UnsafeBufferPointer(start: $0, count: strlen($0) + 1)) }
        #expect(bytes == nonUTF8Name)
        #expect(bad.kind == .regular)
        // The same entry through the String API: its name is no longer the file's.
        let lossy = try #require(try dir.descriptor.directoryEntries().first { $0.name != "plain" })
        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.status(at: FilePath(lossy.name)) }
        // The raw name reaches it.
        let status = try nonUTF8Name.withUnsafeBufferPointer { try dir.descriptor.status(atRawName: $0.baseAddress!) }
        #expect(status.inode == bad.inode)
        #expect(try dir.descriptor.status(at: bad.name).inode == bad.inode)
    }

    @Test func removeTreeRemovesNamesThatAreNotUTF8() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "tree")
        let tree = try dir.descriptor.openDirectory(at: "tree")
        defer { tree.closeQuietly() }
        // A file and a directory with names that are not UTF-8, and a file inside the directory.
        var directoryName = nonUTF8Name
        directoryName[4] = -3
        try nonUTF8Name.withUnsafeBufferPointer {
            try tree.open(atRawName: $0.baseAddress!, flags: O_WRONLY | O_CREAT | O_EXCL).closeQuietly()
        }
        #expect(directoryName.withUnsafeBufferPointer { mkdirat(tree.rawValue, $0.baseAddress!, 0o755) } == 0)
        let inner = try directoryName.withUnsafeBufferPointer {
            try tree.open(atRawName: $0.baseAddress!, flags: O_RDONLY | O_DIRECTORY)
        }
        try nonUTF8Name.withUnsafeBufferPointer {
            try inner.open(atRawName: $0.baseAddress!, flags: O_WRONLY | O_CREAT | O_EXCL).closeQuietly()
        }
        inner.closeQuietly()
        #expect(try tree.rawDirectoryEntries().count == 2)

        try dir.descriptor.removeTree(at: "tree")
        #expect(!dir.descriptor.exists(at: "tree"))
    }

    @Test func rawSymlinkReadAndXattrs() throws {
        let dir = try TemporaryDirectory()
        #expect(nonUTF8Name.withUnsafeBufferPointer { symlinkat("target/\u{00E9}", dir.descriptor.rawValue, $0.baseAddress!) } == 0)
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = try nonUTF8Name.withUnsafeBufferPointer { name in
            try buffer.withUnsafeMutableBytes { try dir.descriptor.readSymbolicLink(atRawName: name.baseAddress!, into: $0) }
        }
        #expect(String(decoding: buffer[0..<n], as: UTF8.self) == "target/\u{00E9}")
        // A buffer too short cuts the content.
        var short = [UInt8](repeating: 0, count: 3)
        let cut = try nonUTF8Name.withUnsafeBufferPointer { name in
            try short.withUnsafeMutableBytes { try dir.descriptor.readSymbolicLink(atRawName: name.baseAddress!, into: $0) }
        }
        #expect(cut == 3 && short == Array("tar".utf8))

        try dir.write("file", "x")
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        defer { fd.closeQuietly() }
        try fd.setExtendedAttribute("user.raw", [1, 2, 3])
        var names = [UInt8](repeating: 0, count: 64)
        let used = try names.withUnsafeMutableBytes { try fd.extendedAttributeNames(into: $0) }
        #expect(Array(names[0..<used]) == Array("user.raw".utf8) + [0])
        var value = [UInt8](repeating: 0, count: 8)
        let got = try value.withUnsafeMutableBytes { try fd.extendedAttribute(rawName: "user.raw", into: $0) }
        #expect(got == 3 && Array(value[0..<3]) == [1, 2, 3])
        let missing = try value.withUnsafeMutableBytes { try fd.extendedAttribute(rawName: "user.none", into: $0) }
        #expect(missing == nil)
        var tiny = [UInt8](repeating: 0, count: 1)
        expectErrno(Errno(rawValue: ERANGE)) { try tiny.withUnsafeMutableBytes { try fd.extendedAttribute(rawName: "user.raw", into: $0) } }
    }

    @Test func changeModeNoFollowSetsModesAndRefusesSymlinks() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        try dir.descriptor.makeSymbolicLink(at: "link", target: "file")
        try dir.descriptor.changeModeNoFollow(at: "file", permissions: .init(rawValue: 0o6750))
        #expect(try dir.descriptor.status(at: "file").permissions.rawValue == 0o6750)
        expectErrno(.notSupported) {
            try dir.descriptor.changeModeNoFollow(at: "link", permissions: .init(rawValue: 0o600))
        }
        #expect(try dir.descriptor.status(at: "file").permissions.rawValue == 0o6750)
    }

    @Test func isMountRootFindsBindMountsOfTheSameFilesystem() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "source")
        try dir.descriptor.makeDirectory(at: "bound")
        #expect(try !dir.descriptor.isMountRoot(at: "bound"))
        try Mounts.mount(source: dir.path("source").string, target: dir.path("bound"), type: nil, flags: .bind)
        defer { try? Mounts.unmount(dir.path("bound"), flags: .detach) }
        #expect(try dir.descriptor.isMountRoot(at: "bound"))
        #expect(try !dir.descriptor.isMountRoot(at: "source"))
        #expect(try FileDescriptor.currentWorkingDirectory.isMountRoot(at: "/proc"))
        // A symlink to a mount point is not one itself.
        try dir.descriptor.makeSymbolicLink(at: "link", target: "bound")
        #expect(try !dir.descriptor.isMountRoot(at: "link"))
    }

    @Test func noFollowXattrsActOnTheSymlinkItself() throws {
        let dir = try TemporaryDirectory()
        try dir.write("target", "x")
        try dir.descriptor.makeSymbolicLink(at: "link", target: "target")
        let d = dir.descriptor
        #expect(try d.extendedAttributeNoFollow("trusted.none", at: "link") == nil)
        try d.setExtendedAttributeNoFollow("trusted.strata", Array("link".utf8), at: "link")
        try d.setExtendedAttributeNoFollow("user.strata", Array("file".utf8), at: "target")
        #expect(try d.extendedAttributeNoFollow("trusted.strata", at: "link") == Array("link".utf8))
        #expect(try d.extendedAttributeNoFollow("trusted.strata", at: "target") == nil)
        #expect(try d.extendedAttributeNamesNoFollow(at: "link") == ["trusted.strata"])
        #expect(try d.extendedAttributeNamesNoFollow(at: "target") == ["user.strata"])
        expectErrno(.notPermitted) { try d.setExtendedAttributeNoFollow("user.refused", [1], at: "link") }
        // A value larger than the first read grows the buffer.
        let big = [UInt8](repeating: 0xAB, count: 2000)
        try d.setExtendedAttributeNoFollow("user.big", big, at: "target")
        #expect(try d.extendedAttributeNoFollow("user.big", at: "target") == big)
        expectErrno(.noSuchFileOrDirectory) { try d.extendedAttributeNamesNoFollow(at: "missing") }
    }

    @Test func userNamespaceIdmapsAMount() throws {
        let namespace = try UserNamespace(
            uidMap: [.init(inside: 0, outside: 300_000, count: 65_536)],
            gidMap: [.init(inside: 0, outside: 400_000, count: 65_536)])
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "tree")
        try dir.descriptor.makeDirectory(at: "mapped")
        try dir.write("tree/f", "x")
        try dir.descriptor.changeOwner(at: "tree/f", user: UserID(rawValue: 1), group: GroupID(rawValue: 2))
        let clone = try FileDescriptor.cloneMount(dir.path("tree"))
        try clone.setIDMapping(userNamespace: namespace.descriptor)
        try clone.moveMount(to: dir.path("mapped"))
        clone.closeQuietly()
        defer { try? Mounts.unmount(dir.path("mapped"), flags: .detach) }
        let status = try dir.descriptor.status(at: "mapped/f")
        #expect(status.userID.rawValue == 300_001)
        #expect(status.groupID.rawValue == 400_002)
    }
}
