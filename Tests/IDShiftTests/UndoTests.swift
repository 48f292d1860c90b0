import Foundation
import GraphDriver
import StrataSystem
import SystemPackage
import Testing

@testable import IDShift

#if canImport(Glibc)
import Glibc
#endif

/// Undoing shifts: the plan keeps every value it replaces, its undo puts them back whether the
/// shift was made, half made or not made at all, and the undo journal carries that to another
/// process, byte for byte.
@Suite("Undo", .serialized, needsRoot)
struct UndoTests {
    /// The two shifts tried: from the identity (a v2 capability becomes v3) and between ranges.
    static let shifts: [(String, IDMappings, IDMappings, UInt32)] = [
        ("identity to 0:100000:65536", .identity, mapping("0:100000:65536"), 0),
        ("0:100000:65536 to 0:200000:65536", mapping("0:100000:65536"), mapping("0:200000:65536"), 100_000),
    ]

    /// A tree with everything a shift rewrites, its IDs offset by `base`: owners, setuid and
    /// setgid bits, v2 and v3 capabilities (one on a setuid file), access and default ACLs,
    /// override_stat, a hard link, a symlink, a fifo and names that are not UTF-8.
    private func makeTree(_ tree: String, base: UInt32) throws {
        func id(_ offset: UInt32) -> String { String(base + offset) }
        let rootID = withUnsafeBytes(of: (base + 1000).littleEndian) { $0.map { String(format: "%02x", $0) }.joined() }
        let v3 = "0x01000003" + "00240000" + "00000000" + "00000000" + "00000000" + rootID
        try sh("""
            set -e; cd \(tree)
            mkdir -p d/sub "$(printf 'dir\\377')"
            touch f suid sgid both v2 v3 acl ostat d/sub/deep "$(printf 'dir\\377/f\\300\\200')" "$(printf '\\351t\\351')"
            ln f d/hard; ln -s f link; mkfifo fifo
            chown -hR \(id(0)):\(id(0)) .
            chown \(id(1000)):\(id(1001)) f; chown \(id(33)):\(id(34)) "$(printf '\\351t\\351')" "$(printf 'dir\\377/f\\300\\200')"
            chown -h \(id(7)):\(id(8)) link
            chmod 4755 suid; chmod 2755 sgid; chmod 6711 both; chmod 2775 d
            setcap cap_net_raw,cap_sys_admin+ep v2
            setfattr -n security.capability -v \(v3) v3; chmod 4755 v3
            setfacl -m u:\(id(1001)):rw,g:\(id(100)):r acl
            setfacl -d -m u:\(id(1003)):rwx,g:\(id(200)):rx d
            setfattr -n user.containers.override_stat -v '\(id(5)):\(id(6)):0100644:file' ostat
            """)
    }

    @Test("plan, apply and undo restore owners, modes, capabilities, ACLs and override_stat exactly",
          arguments: [0, 1])
    func applyThenUndo(shift: Int) throws {
        let (_, from, to, base) = Self.shifts[shift]
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: base)
        let before = try snapshot(tree)
        let prepared = try ChownShifter().prepare(tree: FilePath(tree), from: from, to: to)
        #expect(try snapshot(tree) == before, "planning changed the tree")
        #expect(prepared.report.hardLinksSkipped == 1)
        #expect(prepared.report.capabilitiesRewritten == 2)
        try prepared.apply()
        let shifted = try snapshot(tree)
        #expect(shifted != before)
        #expect(try owner(tree + "/suid").mode == 0o4755)
        try prepared.undo()
        #expect(try snapshot(tree) == before)
        #expect(xattr(tree + "/v2", "security.capability")?.count == 20)
        // Undoing again, or undoing what was never applied, changes nothing.
        try prepared.undo()
        #expect(try snapshot(tree) == before)
        // Applying again gives the same shifted tree.
        try prepared.apply()
        #expect(try snapshot(tree) == shifted)
    }

    @Test("undo after a shift stopped part-way (fault injection) restores everything",
          arguments: [0, 1, 6, 12, 17])
    func undoAfterFailure(stopAfter: Int) throws {
        let (_, from, to, base) = Self.shifts[1]
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: base)
        let before = try snapshot(tree)
        let full = try ChownShifter().prepare(tree: FilePath(tree), from: from, to: to)
        #expect(full.entryCount == 17)
        let options = ShiftOptions(threads: 1, faultInjection: .fail(afterEntries: stopAfter))
        let prepared = try ChownShifter(options: options).prepare(tree: FilePath(tree), from: from, to: to)
        do {
            try prepared.apply()
            Issue.record("fault injection did not stop the shift")
        } catch {
            #expect(error.reason == "fault injection: stopped after \(stopAfter) entries")
            #expect(error.code == .io)
        }
        if stopAfter == 0 {
            #expect(try snapshot(tree) == before, "the shift changed the tree although it stopped before the first entry")
        } else if stopAfter < 17 {
            #expect(try snapshot(tree) != before, "nothing was changed before the fault")
        }
        try prepared.undo()
        #expect(try snapshot(tree) == before)
    }

    @Test("undo after only some directory plans were applied restores everything", arguments: [1, 2, 3])
    func undoAfterSomeDirectories(applied: Int) throws {
        let (_, from, to, base) = Self.shifts[0]
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: base)
        let before = try snapshot(tree)
        let prepared = try ChownShifter().prepare(tree: FilePath(tree), from: from, to: to)
        #expect(prepared.plans.count > applied)
        let root = try FileDescriptor.openDirectory(FilePath(tree))
        defer { root.closeQuietly() }
        // The directories the threads would reach last are the ones left out.
        try ShiftApplier(root: root, tree: FilePath(tree), plans: Array(prepared.plans.prefix(applied)), threads: 2).run()
        #expect(try snapshot(tree) != before)
        try prepared.undo()
        #expect(try snapshot(tree) == before)
    }

    @Test("the undo journal reads back exactly, non-UTF-8 names included, and is whole or refused")
    func journalRoundTrip() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: 0)
        let prepared = try ChownShifter().prepare(tree: FilePath(tree), from: .identity, to: mapping("0:100000:65536"))
        let journal = FilePath(scratch.path + "/journal")
        try prepared.writeUndoJournal(to: journal, recordingNamesIn: FilePath(tree))
        #expect(!FileManager.default.fileExists(atPath: journal.string + ".new"))
        let read = try UndoJournal(reading: journal)
        #expect(read.undo == prepared.undoPlans)
        let names = try #require(read.names)
        #expect(names.count == 17)
        // Names keep their bytes: `dir\xff/f\xc0\x80` and `\xe9t\xe9` are not UTF-8.
        let raw = Set(names.map { name in name.withPlatformString { Array(UnsafeBufferPointer(start: $0, count: strlen($0))).map { UInt8(bitPattern: $0) } } })
        #expect(raw.contains([0x64, 0x69, 0x72, 0xFF, 0x2F, 0x66, 0xC0, 0x80]))
        #expect(raw.contains([0xE9, 0x74, 0xE9]))
        let undoNames = read.undo.flatMap { plan in plan.entries.map { plan.path.pushing($0.name) } }
        #expect(undoNames.contains(FilePath(platformString: [0x64, 0x69, 0x72, -1, 0x2F, 0x66, -64, -128, 0])))
        // Entries carry their old values: `f`'s owner and the v2 capability's 20 bytes.
        let f = read.undo.flatMap(\.entries).first { $0.name == "f" }
        #expect(f?.owner == Ownership(uid: 1000, gid: 1001))
        let v2 = read.undo.flatMap(\.entries).first { $0.name == "v2" }
        #expect(v2?.attributes.first { $0.name == "security.capability" }?.value.count == 20)
        // Without names, none are read back.
        try prepared.writeUndoJournal(to: journal)
        #expect(try UndoJournal(reading: journal).names == nil)

        // A journal cut short, or with a byte changed, is refused as corrupt.
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: journal.string)))
        for damaged in [Array(bytes.dropLast(9)), Array(bytes.prefix(30)), bytes.enumerated().map { $0 == bytes.count / 2 ? $1 ^ 0x40 : $1 }] {
            try Data(damaged).write(to: URL(fileURLWithPath: journal.string))
            #expect { try UndoJournal(reading: journal) } throws: { ($0 as? StorageError)?.code == .corrupt }
        }
        #expect { try UndoJournal(reading: FilePath(scratch.path + "/missing")) } throws: { ($0 as? StorageError)?.code == .notFound }
    }

    @Test("a journal named without a directory is written in the working directory")
    func journalWithoutDirectory() throws {
        let scratch = ScratchDirectory()
        let directory = try FileDescriptor.openDirectory(FilePath(scratch.path))
        defer { directory.closeQuietly() }
        final class Outcome: @unchecked Sendable { var error: StorageError? }
        let outcome = Outcome()
        // On a thread of its own, so the process's working directory stays as it is.
        try ThreadWorkingDirectory.run(in: directory) {
            do throws(StorageError) {
                try UndoJournal(undo: []).write(to: "journal")
            } catch {
                outcome.error = error
            }
            return nil
        }
        #expect(outcome.error == nil)
        #expect(try UndoJournal(reading: FilePath(scratch.path + "/journal")).undo.isEmpty)
    }

    @Test("rolling back from the journal after a shift stopped part-way restores everything, repeatably",
          arguments: [0, 4, 17])
    func rollBackFromJournal(stopAfter: Int) throws {
        let (_, from, to, base) = Self.shifts[1]
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: base)
        let before = try snapshot(tree)
        let journal = FilePath(scratch.path + "/journal")
        do {
            let options = ShiftOptions(threads: 2, faultInjection: .fail(afterEntries: stopAfter))
            let prepared = try ChownShifter(options: options).prepare(tree: FilePath(tree), from: from, to: to)
            try prepared.writeUndoJournal(to: journal)
            #expect(throws: StorageError.self) { try prepared.apply() }
        }
        if stopAfter == 17 { #expect(try owner(tree + "/f").uid == 201_000) }
        try ChownShifter().rollBack(tree: FilePath(tree), journal: journal)
        #expect(try snapshot(tree) == before)
        try ChownShifter().rollBack(tree: FilePath(tree), journal: journal)
        #expect(try snapshot(tree) == before)
    }

    @Test("a rollback with recorded names removes what was added (copy-ups) and restores the rest")
    func rollBackRemovesAdded() throws {
        let scratch = ScratchDirectory()
        let tree = scratch.directory("tree")
        try makeTree(tree, base: 0)
        let before = try snapshot(tree)
        let journal = FilePath(scratch.path + "/journal")
        let prepared = try ChownShifter().prepare(tree: FilePath(tree), from: .identity, to: mapping("0:100000:65536"))
        try prepared.writeUndoJournal(to: journal, recordingNamesIn: FilePath(tree))
        try prepared.apply()
        // What an overlay copy-up adds: new files in old and new directories, at any depth.
        try sh("""
            set -e; cd \(tree)
            mkdir -p new/a/b "$(printf 'n\\377')"; touch new/a/b/x d/copied d/sub/copied "$(printf 'dir\\377/new\\377')"
            ln -s nowhere d/sub/dangling; chown -hR 100000:100000 new d/copied
            """)
        try ChownShifter().rollBack(tree: FilePath(tree), journal: journal)
        #expect(try snapshot(tree) == before)
    }
}
