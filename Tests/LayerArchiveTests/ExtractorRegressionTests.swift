import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Streams that once broke the extractor: a parent directory closed while its entry was still
/// being written, and names or link targets that are not UTF-8.
@Suite("Extractor regressions", .serialized)
struct ExtractorRegressionTests {
    /// Applies `archive` with Strata and extracts it with GNU tar, and expects the same trees.
    private func expectSameAsGNUTar(_ archive: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let scratch = ScratchDirectory()
        let ours = scratch.directory("ours")
        let gnu = scratch.directory("gnu")
        let file = scratch.file("layer.tar", archive)
        // Strata replaces a non-empty directory that a later entry names: --recursive-unlink.
        try sh("tar --numeric-owner --recursive-unlink -xpf \(file) -C \(gnu)")
        try apply(archive, to: ours)
        var ourInodes: [String: UInt64] = [:], gnuInodes: [String: UInt64] = [:]
        let actual = try withUnsafeMutablePointer(to: &ourInodes) { try snapshot(ours, inodes: $0) }
        let expected = try withUnsafeMutablePointer(to: &gnuInodes) { try snapshot(gnu, inodes: $0) }
        #expect(Set(actual.keys) == Set(expected.keys), sourceLocation: sourceLocation)
        for (path, want) in expected where path != "." {
            #expect(actual[path] == want, "\(path): \(actual[path].map(\.description) ?? "missing") != \(want)",
                    sourceLocation: sourceLocation)
        }
        // The same paths share an inode in both trees.
        func groups(_ inodes: [String: UInt64]) -> Set<Set<String>> {
            Set(Dictionary(grouping: inodes.keys, by: { inodes[$0]! }).values.map(Set.init))
        }
        #expect(groups(ourInodes) == groups(gnuInodes), sourceLocation: sourceLocation)
    }

    @Test("a file replacing a cached directory is written into its still-open parent")
    func fileReplacesCachedDirectory() throws {
        var tar = TarBuilder()
        tar.add("d/", type: .directory, mode: 0o755)
        tar.add("d/a/", type: .directory, mode: 0o755)
        tar.add("d/a/x", data: [1])
        tar.add("d/a", data: [2])
        try expectSameAsGNUTar(tar.finished())
    }

    @Test("a symlink and a whiteout replacing a cached directory land in the entry's parent")
    func otherEntriesReplaceCachedDirectory() throws {
        var tar = TarBuilder()
        tar.add("d/", type: .directory, mode: 0o755)
        tar.add("d/a/", type: .directory, mode: 0o755)
        tar.add("d/a/x", data: [1])
        tar.add("d/a", type: .symlink, linkName: "elsewhere")
        tar.add("d/b/", type: .directory, mode: 0o755)
        tar.add("d/b/y", data: [1])
        tar.add("d/.wh.b")
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(tar.finished(), to: layer)
        let snap = try snapshot(layer)
        #expect(snap["d/a"]?.linkTarget == "elsewhere")
        #expect(snap["d/b"]?.kind == .characterDevice && snap["d/b"]?.device == 0)
        #expect(snap["d/a/x"] == nil && snap["d/b/y"] == nil)
    }

    /// `q/f`, then enough directories that looking up `q` for the link fills the parent cache
    /// while `p` (the link's parent) is in it.
    @Test("a hardlink whose target lookup fills the parent cache still links into its parent",
          arguments: [126, 127, 128])
    func hardlinkAfterCacheOverflow(fillers: Int) throws {
        var tar = TarBuilder()
        tar.add("q/", type: .directory, mode: 0o755)
        tar.add("q/f", data: Array("data".utf8))
        for i in 0..<128 { tar.add("d\(i)/", type: .directory, mode: 0o755) }
        tar.add("p/", type: .directory, mode: 0o755)
        for i in 0..<fillers { tar.add("e\(i)/", type: .directory, mode: 0o755) }
        tar.add("p/link", type: .hardlink, linkName: "q/f")
        try expectSameAsGNUTar(tar.finished())
    }

    @Test("existing entries of every kind are replaced by every kind of entry, as GNU tar does")
    func replacementMatrix() throws {
        var tar = TarBuilder()
        tar.add("t/", type: .directory, mode: 0o755)
        tar.add("t/target", data: Array("target".utf8))
        let kinds: [(String, TarBuilder.TypeFlag, String)] = [
            ("file", .file, ""), ("dir", .directory, ""), ("sym", .symlink, "somewhere"),
            ("link", .hardlink, "t/target"), ("fifo", .fifo, ""),
        ]
        for (old, oldType, oldLink) in kinds {
            for (new, newType, newLink) in kinds {
                let name = "\(old)-to-\(new)"
                tar.add(oldType == .directory ? name + "/" : name, type: oldType, mode: 0o755, linkName: oldLink)
                // A directory entry over a directory updates it (GNU tar's --recursive-unlink
                // would empty it first): only the directories that get replaced have content.
                if oldType == .directory && newType != .directory { tar.add(name + "/inner", data: [7]) }
                tar.add(newType == .directory ? name + "/" : name, type: newType, mode: 0o750, linkName: newLink)
            }
        }
        try expectSameAsGNUTar(tar.finished())
    }

    @Test("a symlink target that is not UTF-8 is written byte for byte")
    func nonUTF8SymlinkTarget() throws {
        let scratch = ScratchDirectory()
        let src = scratch.directory("src")
        try sh("cd \(src) && ln -s \"$(printf 'caf\\351')\" link && tar -cf ../src.tar link")
        let layer = scratch.directory("layer")
        try LayerApplier.apply(archive: FilePath(scratch.path + "/src.tar"), into: FilePath(layer))
        let dir = try FileDescriptor.openDirectory(FilePath(layer))
        defer { dir.closeQuietly() }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { b in try dir.readSymbolicLink(atRawName: "link", into: b) }
        #expect(Array(buffer[0..<count]) == [0x63, 0x61, 0x66, 0xE9])
    }

    @Test("applying onto a layer that holds a name that is not UTF-8 keeps that file")
    func applyOntoNonUTF8Name() throws {
        let scratch = ScratchDirectory()
        let src = scratch.directory("src")
        try sh("cd \(src) && mkdir \"$(printf 'd\\351')\" && printf one > \"$(printf 'd\\351/f\\351')\" && tar -cf ../first.tar .")
        var second = TarBuilder()
        second.add("other", data: [1])
        let layer = scratch.directory("layer")
        try LayerApplier.apply(archive: FilePath(scratch.path + "/first.tar"), into: FilePath(layer))
        try apply(second.finished(), to: layer)
        try apply(second.finished(), to: layer)
        let root = try FileDescriptor.openDirectory(FilePath(layer))
        defer { root.closeQuietly() }
        let names = try root.rawDirectoryEntries().map { rawBytes($0.name) }.sorted { $0.lexicographicallyPrecedes($1) }
        #expect(names == [[0x64, 0xE9], Array("other".utf8)])
        let inner = try root.openDirectory(at: FilePath(platformString: [0x64, CChar(bitPattern: 0xE9), 0]))
        defer { inner.closeQuietly() }
        #expect(try inner.rawDirectoryEntries().map { rawBytes($0.name) } == [[0x66, 0xE9]])
    }
}

/// A one-component path's bytes, exactly as the filesystem holds them.
func rawBytes(_ name: FilePath) -> [UInt8] {
    name.withPlatformString { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) }
}
