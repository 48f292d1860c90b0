import Foundation
import GraphDriver
import LayerArchive
import StrataSystem
import SystemPackage
import Testing

/// Names that a `Change` path (a `String`) cannot carry.
@Suite("Naive changes: names that are not UTF-8")
struct NaiveChangesNameTests {
    @Test("a changed name that is not UTF-8 fails the diff, naming its directory, instead of going missing",
          arguments: ["add", "delete"])
    func nonUTF8NameFails(kind: String) throws {
        let scratch = ScratchDirectory()
        let old = scratch.directory("old"), new = scratch.directory("new")
        let side = kind == "add" ? new : old
        try sh("mkdir -p \(old)/sub \(new)/sub && printf x > \(side)/sub/\"$(printf 'f\\351')\" && printf y > \(new)/plain")
        do {
            _ = try LayerChanges.naiveChanges(old: FilePath(old), new: FilePath(new))
            Issue.record("the diff of a tree holding a name that is not UTF-8 succeeded")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.path == "/sub")
            #expect(error.reason.contains("f\\xe9"))
        }
    }

    @Test("UTF-8 names that are not ASCII are listed as they are")
    func utf8NamesPass() throws {
        let scratch = ScratchDirectory()
        let new = scratch.directory("new")
        try sh("mkdir -p \(new)/café && printf x > \(new)/café/naïve")
        let changes = try LayerChanges.naiveChanges(old: nil, new: FilePath(new))
        #expect(changes.map(\.description) == ["A /café", "A /café/naïve"])
    }
}
