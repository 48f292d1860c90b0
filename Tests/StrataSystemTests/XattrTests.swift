import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Extended attributes")
struct XattrTests {
    @Test(needsRoot) func onADescriptor() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        defer { fd.closeQuietly() }
        #expect(try fd.extendedAttribute("user.missing") == nil)
        try fd.setExtendedAttribute("user.strata.test", Array("value".utf8))
        try fd.setExtendedAttribute("trusted.overlay.opaque", [UInt8(ascii: "y")])
        try fd.setExtendedAttribute("user.empty", [])
        #expect(try fd.extendedAttribute("user.strata.test") == Array("value".utf8))
        #expect(try fd.extendedAttribute("trusted.overlay.opaque") == [UInt8(ascii: "y")])
        #expect(try fd.extendedAttribute("user.empty") == [])
        #expect(Set(try fd.extendedAttributeNames())
                == ["user.strata.test", "trusted.overlay.opaque", "user.empty"])

        try fd.removeExtendedAttribute("user.strata.test")
        try fd.removeExtendedAttribute("user.strata.test")  // absent: no error
        #expect(try fd.extendedAttribute("user.strata.test") == nil)
        #expect(Set(try fd.extendedAttributeNames()) == ["trusted.overlay.opaque", "user.empty"])
    }

    @Test(needsRoot) func largeValuesGrowTheBuffer() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        defer { fd.closeQuietly() }
        // Larger than the first 256-byte read, within ext4's one-block limit.
        let big = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try fd.setExtendedAttribute("user.big", big)
        #expect(try fd.extendedAttribute("user.big") == big)
        #expect(try fd.extendedAttributeNames() == ["user.big"])

        // Enough names to overflow the first 1 KiB list buffer (on another file: ext4 keeps a
        // file's attributes in one block).
        try dir.write("many", "x")
        var expected: Set<String> = []
        for i in 0..<40 {
            let name = "user.a-fairly-long-attribute-name-number-\(i)"
            try dir.descriptor.setExtendedAttribute(name, [UInt8(i)], at: "many")
            expected.insert(name)
        }
        #expect(Set(try dir.descriptor.extendedAttributeNames(at: "many")) == expected)
        #expect(try dir.descriptor.extendedAttribute("user.a-fairly-long-attribute-name-number-39", at: "many") == [39])
    }

    @Test(needsRoot) func onAPathWithoutFollowingSymlinks() throws {
        let dir = try TemporaryDirectory()
        try dir.write("target", "x")
        try dir.descriptor.makeSymbolicLink(at: "link", target: "target")
        let d = dir.descriptor

        // user.* on a path (a regular file).
        try d.setExtendedAttribute("user.path", Array("p".utf8), at: "target")
        #expect(try d.extendedAttribute("user.path", at: "target") == Array("p".utf8))
        // The link itself has no user.path: the call did not follow it.
        #expect(try d.extendedAttribute("user.path", at: "link") == nil)

        // trusted.* on the symlink itself (user.* is not allowed on symlinks).
        try d.setExtendedAttribute("trusted.strata", Array("on-link".utf8), at: "link")
        #expect(try d.extendedAttribute("trusted.strata", at: "link") == Array("on-link".utf8))
        #expect(try d.extendedAttribute("trusted.strata", at: "target") == nil)
        #expect(try d.extendedAttributeNames(at: "link") == ["trusted.strata"])
        expectErrno(.notPermitted) {
            try d.setExtendedAttribute("user.refused", [1], at: "link")
        }

        try d.removeExtendedAttribute("trusted.strata", at: "link")
        try d.removeExtendedAttribute("trusted.strata", at: "link")
        #expect(try d.extendedAttributeNames(at: "link") == [])
        #expect(try d.extendedAttributeNames(at: "target") == ["user.path"])

        // Nested paths and the directory itself (empty path).
        try d.makeDirectory(at: "sub")
        try dir.write("sub/inner", "y")
        try d.setExtendedAttribute("user.inner", [9], at: "sub/inner")
        #expect(try d.extendedAttribute("user.inner", at: "sub/inner") == [9])
        try d.setExtendedAttribute("user.self", [1, 2], at: "")
        #expect(try d.extendedAttribute("user.self") == [1, 2])
        #expect(try d.extendedAttribute("user.self", at: "") == [1, 2])

        expectErrno(.noSuchFileOrDirectory) { try d.extendedAttribute("user.x", at: "missing") }
    }

    @Test(needsRoot) func emptyPathOnAnOPathSymlinkDescriptorNamesTheLink() throws {
        let dir = try TemporaryDirectory()
        try dir.write("target", "x")
        try dir.descriptor.makeSymbolicLink(at: "link", target: "target")
        let link = try dir.descriptor.open(at: "link", flags: openPathOnly | O_NOFOLLOW)
        defer { link.closeQuietly() }
        try link.setExtendedAttribute("trusted.on-link", [7], at: "")
        #expect(try link.extendedAttribute("trusted.on-link", at: "") == [7])
        #expect(try link.extendedAttributeNames(at: "") == ["trusted.on-link"])
        #expect(try dir.descriptor.extendedAttribute("trusted.on-link", at: "link") == [7])
        #expect(try dir.descriptor.extendedAttribute("trusted.on-link", at: "target") == nil)
        try link.removeExtendedAttribute("trusted.on-link", at: "")
        #expect(try dir.descriptor.extendedAttributeNames(at: "link") == [])
        // fgetxattr on an O_PATH descriptor is refused; the path form is the way.
        expectErrno(.badFileDescriptor) { try link.extendedAttribute("trusted.on-link") }
    }
}
