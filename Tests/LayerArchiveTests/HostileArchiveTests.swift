import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

/// Archives made to escape the layer or to break the reader. Whatever an archive holds, nothing
/// outside the layer is created, changed or deleted; an archive that fails leaves the layer as
/// it was.
@Suite("Hostile archives", .serialized)
struct HostileArchiveTests {
    /// One hostile archive: how it is built, and whether it must be refused.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var mustFail: Bool
        var build: @Sendable (_ outside: String) -> [UInt8]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "dot-dot file", mustFail: true) { _ in
            var t = TarBuilder(); t.add("../escape", data: [1]); return t.finished()
        },
        Case(name: "dot-dot in the middle", mustFail: true) { _ in
            var t = TarBuilder(); t.add("a/../../escape", data: [1]); return t.finished()
        },
        Case(name: "dot-dot in a PAX path", mustFail: true) { _ in
            var t = TarBuilder(); t.add("innocent", data: [1], pax: ["path": "../pax-escape"]); return t.finished()
        },
        Case(name: "dot-dot in a GNU long name", mustFail: true) { _ in
            var t = TarBuilder()
            t.add("././@LongLink", type: .gnuLongName, data: Array("../../gnu-escape\0".utf8))
            t.add("short", data: [1])
            return t.finished()
        },
        Case(name: "absolute file name lands inside the layer", mustFail: false) { outside in
            var t = TarBuilder(); t.add(outside + "/escape", data: [1]); return t.finished()
        },
        Case(name: "write through an absolute symlink to outside", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: outside)
            t.add("link/escape", data: [1])
            return t.finished()
        },
        Case(name: "write through a relative symlink climbing out", mustFail: false) { _ in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: "../../../../../../../../tmp")
            t.add("link/escape", data: [1])
            return t.finished()
        },
        Case(name: "chain of symlinks climbing out", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("a", type: .symlink, linkName: "b/..")
            t.add("b", type: .symlink, linkName: "../..")
            t.add("a/escape", data: [1])
            t.add("c", type: .symlink, linkName: outside)
            t.add("c/x/escape", data: [1])
            return t.finished()
        },
        Case(name: "hardlink with dot-dot", mustFail: true) { _ in
            var t = TarBuilder(); t.add("hl", type: .hardlink, linkName: "../outside/secret"); return t.finished()
        },
        Case(name: "hardlink to an absolute outside path", mustFail: true) { outside in
            var t = TarBuilder(); t.add("hl", type: .hardlink, linkName: outside + "/secret"); return t.finished()
        },
        Case(name: "hardlink through a symlink to outside", mustFail: true) { outside in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: outside)
            t.add("hl", type: .hardlink, linkName: "link/secret")
            return t.finished()
        },
        Case(name: "whiteout of dot-dot", mustFail: true) { _ in
            var t = TarBuilder(); t.add(".wh..."); return t.finished()
        },
        Case(name: "whiteout of dot", mustFail: true) { _ in
            var t = TarBuilder(); t.add("dir/.wh.."); return t.finished()
        },
        Case(name: "whiteout in a parent directory", mustFail: true) { _ in
            var t = TarBuilder(); t.add("../.wh.secret"); return t.finished()
        },
        Case(name: "whiteout through a symlink to outside", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: outside)
            t.add("link/.wh.secret")
            return t.finished()
        },
        Case(name: "opaque marker through a symlink to outside", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: outside)
            t.add("link/.wh..wh..opq")
            return t.finished()
        },
        Case(name: "file replaces a symlink to an outside file", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("link", type: .symlink, linkName: outside + "/secret")
            t.add("link", data: Array("overwritten".utf8))
            return t.finished()
        },
        Case(name: "directory entry over a symlink to outside", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("d", type: .symlink, linkName: outside)
            t.add("d/", type: .directory, mode: 0o777, uid: 12345)
            return t.finished()
        },
        Case(name: "hardlink to a symlink, then a file at the link", mustFail: false) { outside in
            var t = TarBuilder()
            t.add("s", type: .symlink, linkName: outside + "/secret")
            t.add("h", type: .hardlink, linkName: "s")
            t.add("h", data: Array("overwritten".utf8))
            return t.finished()
        },
        Case(name: "device node named with dot-dot", mustFail: true) { _ in
            var t = TarBuilder(); t.add("../dev", type: .char, devMajor: 1, devMinor: 3); return t.finished()
        },
        Case(name: "overlay xattrs in the stream are dropped", mustFail: false) { _ in
            var t = TarBuilder()
            t.add("d/", type: .directory, pax: ["SCHILY.xattr.trusted.overlay.redirect": "/etc"])
            return t.finished()
        },
        Case(name: "truncated in the middle of file data", mustFail: true) { _ in
            var t = TarBuilder(); t.add("ok", data: [1, 2, 3]); t.add("big", data: Array(repeating: 9, count: 5000))
            return Array(t.finished().prefix(512 * 4))
        },
        Case(name: "bad header checksum", mustFail: true) { _ in
            var t = TarBuilder(); t.add("ok", data: [1]); t.add("bad", data: [2], corruptChecksum: true); return t.finished()
        },
        Case(name: "not a tar at all", mustFail: true) { _ in
            Array("this is not an archive, just some text that goes on for a while.".utf8) + [UInt8](repeating: 0x41, count: 2000)
        },
        Case(name: "header claims more data than the stream has", mustFail: true) { _ in
            var t = TarBuilder(); t.add("liar", data: [1, 2, 3], size: 1 << 20); return t.bytes
        },
        Case(name: "truncated gzip stream", mustFail: true) { _ in
            var t = TarBuilder()
            for i in 0..<50 { t.add("f\(i)", data: Array(repeating: UInt8(i), count: 4000)) }
            let gz = try! gzip(t.finished())
            return Array(gz.prefix(gz.count / 2))
        },
        Case(name: "hardlink to a missing target", mustFail: true) { _ in
            var t = TarBuilder(); t.add("ok", data: [1]); t.add("hl", type: .hardlink, linkName: "missing"); return t.finished()
        },
        Case(name: "file below a regular file", mustFail: true) { _ in
            var t = TarBuilder(); t.add("plain", data: [1]); t.add("plain/child", data: [2]); return t.finished()
        },
    ]

    @Test("hostile archive", arguments: cases)
    func hostile(_ hostile: Case) throws {
        let scratch = ScratchDirectory("strata-hostile")
        let outside = scratch.directory("outside")
        try sh("echo secret > \(outside)/secret && mkdir \(outside)/x && chmod 755 \(outside)")
        let layer = scratch.directory("layer")
        try sh("mkdir -p \(layer)/dir && echo keep > \(layer)/sentinel && echo keep > \(layer)/dir/file")
        let outsideBefore = try snapshot(outside, directoryTimes: true)
        let layerBefore = try snapshot(layer, directoryTimes: true)
        let tmpBefore = Set(try FileManager.default.contentsOfDirectory(atPath: "/tmp"))
        let scratchBefore = Set(try FileManager.default.contentsOfDirectory(atPath: scratch.path))

        var failure: StorageError?
        let archive = hostile.build(outside)
        do throws(StorageError) {
            try apply(archive, to: layer)
        } catch {
            failure = error
        }

        #expect(try snapshot(outside, directoryTimes: true) == outsideBefore, "something outside the layer changed")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: scratch.path)) == scratchBefore)
        let tmpAfter = Set(try FileManager.default.contentsOfDirectory(atPath: "/tmp"))
        #expect(!tmpAfter.contains("escape") && !tmpAfter.contains("pax-escape") && !tmpAfter.contains("gnu-escape"))
        #expect(!tmpAfter.subtracting(tmpBefore).contains { $0.contains("escape") })
        if hostile.mustFail {
            let error = try #require(failure, "the archive was accepted")
            #expect(!error.description.isEmpty)
            #expect(try snapshot(layer, directoryTimes: true) == layerBefore, "a failed apply changed the layer")
        } else if let failure {
            // Refusing is also safe, but then the layer must be as it was.
            #expect(try snapshot(layer, directoryTimes: true) == layerBefore, "a failed apply changed the layer: \(failure)")
        }
    }

    @Test("an error names the entry and its offset")
    func errorNamesEntry() throws {
        var t = TarBuilder()
        t.add("first", data: [1])
        t.add("second/../../x", data: [2])
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        let archive = t.finished()
        do throws(StorageError) {
            try apply(archive, to: layer)
            Issue.record("accepted an archive with ..")
        } catch {
            #expect(error.code == .unsafePath)
            #expect(error.description.contains("second/../../x"))
            #expect(error.description.contains("offset 1024"))
        }
    }

    @Test("overlay xattrs from the stream never reach the disk")
    func overlayXattrsDropped() throws {
        var t = TarBuilder()
        t.add("d/", type: .directory, pax: ["SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                            "SCHILY.xattr.trusted.overlay.opaque": "y",
                                            "SCHILY.xattr.user.kept": "v"])
        let scratch = ScratchDirectory()
        let layer = scratch.directory("layer")
        try apply(t.finished(), to: layer)
        let snap = try snapshot(layer)
        #expect(snap["d"]?.xattrs.keys.sorted() == ["user.kept"])
    }
}

/// Gzips bytes with the system's gzip.
func gzip(_ bytes: [UInt8]) throws -> [UInt8] {
    let scratch = ScratchDirectory()
    let file = scratch.file("data", bytes)
    try run("/bin/gzip", ["-f", file])
    return Array(try Data(contentsOf: URL(fileURLWithPath: file + ".gz")))
}
