import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The path-based xattr calls, which are also the fallback of the `*xattrat` calls on kernels
/// before 6.13 (this host has those, so the fallback is tested through these calls directly).
@Suite("Extended attributes by path")
struct XattrPathTests {
    @Test(needsRoot) func absoluteAndWorkingDirectoryPaths() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        let cwd = FileDescriptor.currentWorkingDirectory
        // An absolute path through the working directory's descriptor (AT_FDCWD).
        try cwd.setExtendedAttribute("user.strata.absolute", [1], at: dir.path("file"))
        #expect(try cwd.extendedAttribute("user.strata.absolute", at: dir.path("file")) == [1])
        // An absolute path through another directory's descriptor: the directory is ignored.
        let other = try FileDescriptor.openDirectory("/")
        defer { other.closeQuietly() }
        try other.setExtendedAttribute("user.strata.other", [2], at: dir.path("file"))
        #expect(Set(try dir.descriptor.extendedAttributeNames(at: "file")) == ["user.strata.absolute", "user.strata.other"])
    }

    @Test(needsRoot) func aNameThatIsNotUTF8() throws {
        let dir = try TemporaryDirectory()
        // "caf\u{e9}" in Latin-1: not UTF-8; a String path would turn it into U+FFFD.
        let name: [CChar] = [0x63, 0x61, 0x66, CChar(bitPattern: 0xE9), 0]
        let fd = name.withUnsafeBufferPointer { openat(dir.descriptor.rawValue, $0.baseAddress!, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644) }
        #expect(fd >= 0)
        close(fd)
        let path = name.withUnsafeBufferPointer { FilePath(platformString: $0.baseAddress!) }
        try dir.descriptor.setExtendedAttribute("user.strata.latin1", [3], at: path)
        #expect(try dir.descriptor.extendedAttribute("user.strata.latin1", at: path) == [3])
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try name.withUnsafeBufferPointer { n in
            try buffer.withUnsafeMutableBytes { try dir.descriptor.extendedAttributeNames(atRawName: n.baseAddress!, into: $0) }
        }
        #expect(String(decoding: buffer[0..<count], as: UTF8.self) == "user.strata.latin1\0")
    }
}
