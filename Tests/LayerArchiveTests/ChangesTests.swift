import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two lower layers and an upper layer exercising every overlay change rule:
///
///     lower2: etc/passwd etc/hosts usr/bin/tool gone/f opt/old/{file,keep,sub/deep}
///     lower1: etc/hosts (whiteout)  new1
///     upper:  etc/passwd etc/hosts usr/bin/tool gone (whiteout) new1
///             opt/old (opaque) with keep and sub/   brand/new/file + brand/link2 (hard link)
func makeOverlayLayers(_ scratch: ScratchDirectory) throws {
    try sh("""
        cd '\(scratch(""))' && mkdir -p lower2/etc lower2/usr/bin lower2/gone lower2/opt/old/sub lower1/etc \
            upper/etc upper/usr/bin upper/opt/old/sub upper/brand/new \
        && printf 'root:x:0:0' > lower2/etc/passwd && printf 'hosts' > lower2/etc/hosts && printf 'tool' > lower2/usr/bin/tool \
        && printf f > lower2/gone/f && printf file > lower2/opt/old/file && printf keep > lower2/opt/old/keep \
        && printf deep > lower2/opt/old/sub/deep && printf n > lower1/new1 \
        && printf 'root:x:0:0:more' > upper/etc/passwd && printf 'new hosts' > upper/etc/hosts \
        && printf 'tool v2' > upper/usr/bin/tool && printf 'new1 v2' > upper/new1 && printf 'keep v2' > upper/opt/old/keep \
        && printf 'brand new' > upper/brand/new/file && ln upper/brand/new/file upper/brand/link2
        """)
    try makeWhiteout(scratch("lower1/etc/hosts"))
    try makeWhiteout(scratch("upper/gone"))
    try setAttribute(scratch("upper/opt/old"), "trusted.overlay.opaque", Array("y".utf8))
    // Directories whose own metadata is the same as below: `usr`, `usr/bin`, `etc`, `opt`.
    for dir in ["usr/bin", "usr", "etc", "opt"] {
        for layer in ["lower2", "upper"] {
            try setModificationTime(scratch("\(layer)/\(dir)"), seconds: 1_500_000_000, nanoseconds: 0)
        }
    }
    try setModificationTime(scratch("upper/opt/old/sub"), seconds: 1_500_000_001, nanoseconds: 0)
}

@Suite("Layer changes", .enabled(if: runningAsRoot, "makes whiteouts and sets trusted.overlay.opaque"))
struct ChangesTests {
    @Test("overlay changes: add, modify, delete, opaque directories, unchanged directories left out")
    func overlayChanges() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeOverlayLayers(scratch)
        let changes = try LayerChanges.overlayChanges(
            layer: FilePath(scratch("upper")), lowers: [FilePath(scratch("lower1")), FilePath(scratch("lower2"))])
        #expect(changes.map(\.description) == [
            "A /brand", "A /brand/link2", "A /brand/new", "A /brand/new/file",
            "C /etc", "A /etc/hosts", "C /etc/passwd",
            "D /gone",
            "C /new1",
            "C /opt", "C /opt/old", "D /opt/old/file", "C /opt/old/keep", "C /opt/old/sub", "D /opt/old/sub/deep",
            "C /usr/bin/tool",
        ])
    }

    @Test("a fresh opaque directory is an add with nothing deleted; no lowers means all adds")
    func freshOpaqueDirectory() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && mkdir -p lower/other upper/fresh && printf x > upper/fresh/x")
        try setAttribute(scratch("upper/fresh"), "trusted.overlay.opaque", Array("y".utf8))
        let changes = try LayerChanges.overlayChanges(layer: FilePath(scratch("upper")), lowers: [FilePath(scratch("lower"))])
        #expect(changes.map(\.description) == ["A /fresh", "A /fresh/x"])
        let alone = try LayerChanges.overlayChanges(layer: FilePath(scratch("upper")), lowers: [])
        #expect(alone.map(\.description) == ["A /fresh", "A /fresh/x"])
    }

    @Test("diff size counts added and modified regular files, hard links once")
    func diffSizeCountsHardLinksOnce() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeOverlayLayers(scratch)
        let size = try LayerChanges.diffSize(
            layer: FilePath(scratch("upper")), lowers: [FilePath(scratch("lower1")), FilePath(scratch("lower2"))])
        // passwd 15 + hosts 9 + tool 7 + new1 7 + keep 7 + brand/new/file 9 (brand/link2 is the same inode).
        #expect(size == 15 + 9 + 7 + 7 + 7 + 9)
    }

    @Test("the overlay change list exported from the merged tree matches the layer's own content")
    func exportOfOverlayChanges() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try makeOverlayLayers(scratch)
        let changes = try LayerChanges.overlayChanges(
            layer: FilePath(scratch("upper")), lowers: [FilePath(scratch("lower1")), FilePath(scratch("lower2"))])
        let (bytes, _) = try captureOutput { fd in
            try LayerExporter.export(changes: changes, root: FilePath(scratch("upper")), to: fd, options: ExportOptions())
        }
        let records = try readTar(bytes).records
        #expect(records.map(\.path) == [
            "brand/", "brand/link2", "brand/new/", "brand/new/file", "etc/", "etc/hosts", "etc/passwd", ".wh.gone",
            "new1", "opt/", "opt/old/", "opt/old/.wh.file", "opt/old/keep", "opt/old/sub/", "opt/old/sub/.wh.deep",
            "usr/bin/tool",
        ])
        #expect(recordsByPath(records)["brand/new/file"]?.hardlink == "brand/link2")
    }

    @Test("naive changes against no parent: everything is added, in order")
    func naiveChangesWithoutParent() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("cd '\(scratch(""))' && mkdir -p b/c && printf 1 > a && printf 2 > b/c/d && ln -s a l")
        let changes = try LayerChanges.naiveChanges(old: nil, new: FilePath(scratch.path))
        #expect(changes.map(\.description) == ["A /a", "A /b", "A /b/c", "A /b/c/d", "A /l"])
    }

    @Test("naive changes compare type, mode, owner, size, mtime, symlink target, device and xattrs")
    func naiveChangesBetweenTrees() throws {
        let scratch = ScratchDirectory()
        defer { scratch.remove() }
        try sh("""
            cd '\(scratch(""))' && mkdir -p old/b old/g && printf 1 > old/a && printf c > old/b/c && ln -s x old/d \
            && printf e > old/e && chmod 0644 old/e && printf f > old/f && printf h > old/g/h && printf x > old/x \
            && printf o > old/own && printf t > old/typ && mknod old/dev c 1 3 \
            && cp -a old new && printf 2 > new/a && rm new/d && ln -s y new/d && chmod 0600 new/e && rm -r new/f new/g \
            && printf n > new/n && chown 5 new/own && rm new/typ && mkdir new/typ && rm new/dev && mknod new/dev c 1 5 \
            && touch new/b
            """)
        try setAttribute(scratch("old/x"), "user.k", Array("1".utf8))
        try setAttribute(scratch("new/x"), "user.k", Array("2".utf8))
        // Same mtimes where only the other attributes should count.
        for path in ["a", "d", "dev", "x"] {
            try setModificationTime(scratch("old/" + path), seconds: 1_400_000_000, nanoseconds: 1)
            try setModificationTime(scratch("new/" + path), seconds: 1_400_000_000, nanoseconds: 1)
        }
        let changes = try LayerChanges.naiveChanges(old: FilePath(scratch("old")), new: FilePath(scratch("new")))
        #expect(changes.map(\.description) == [
            "C /d", "C /dev", "C /e", "D /f", "D /g", "A /n", "C /own", "C /typ", "C /x",
        ])
        #expect(try LayerChanges.naiveChanges(old: FilePath(scratch("old")), new: FilePath(scratch("old"))).isEmpty)
        // `a` has new content of the same size and the same mtime: like containers/storage, that is
        // no change. A pure mtime change of a file counts; of a directory (b was touched) it does not.
        try setModificationTime(scratch("new/a"), seconds: 1_400_000_000, nanoseconds: 2)
        #expect(try LayerChanges.naiveChanges(old: FilePath(scratch("old")), new: FilePath(scratch("new"))).contains(Change(path: "/a", kind: .modify)))
    }
}
