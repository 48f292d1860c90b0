import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Breaks a store in one way at a time: `check` must report it, `check(repair:)` fix it, and
/// `check` then find nothing.
@Suite("Store check and repair", needsRoot)
struct StoreCheckTests {
    /// A store with a base layer, a child on it and a writable layer on the child.
    private func makeStore() throws -> (TemporaryStore, OverlayDriver) {
        let store = try TemporaryStore()
        let driver = try store.driver()
        try driver.create(try LayerID("base"), parent: nil, options: CreateOptions())
        try driver.create(try LayerID("child"), parent: try LayerID("base"), options: CreateOptions())
        try driver.createReadWrite(try LayerID("top"), parent: try LayerID("child"), options: CreateOptions())
        FileManager.default.createFile(atPath: store.home.appending("base/diff/file").string, contents: Data("hello".utf8))
        return (store, driver)
    }

    /// Breaks the store with `breakIt`, then checks, repairs and checks again.
    private func expectRepaired(_ kind: StoreProblem.Kind, _ breakIt: (TemporaryStore, OverlayDriver) throws -> Void) throws {
        let (store, driver) = try makeStore()
        defer { store.destroy() }
        #expect(try driver.check(repair: false).isClean, "a fresh store is not clean")
        try breakIt(store, driver)
        let found = try driver.check(repair: false)
        #expect(found.problems.contains { $0.kind == kind }, "check did not report \(kind): \(found.problems)")
        #expect(!found.isClean)
        let repaired = try driver.check(repair: true)
        #expect(repaired.isClean, "repair left \(repaired.remaining)")
        #expect(!repaired.repairs.isEmpty)
        let after = try driver.check(repair: false)
        #expect(after.isClean, "after repair: \(after.problems)")
        #expect(after.layers == 3)
        // The store still works: the stack mounts and shows the base layer's file.
        let merged = try driver.get(try LayerID("top"), options: MountOptions())
        #expect(FileManager.default.contents(atPath: merged.appending("file").string) == Data("hello".utf8))
        try driver.put(try LayerID("top"))
        #expect(try driver.check(repair: false).isClean)
    }

    private func shortName(_ store: TemporaryStore, _ id: String) throws -> String {
        try String(contentsOfFile: store.home.appending("\(id)/link").string, encoding: .utf8)
    }

    @Test("a missing link file is reported and rebuilt")
    func missingLinkFile() throws {
        try expectRepaired(.missingLink) { store, _ in
            try FileManager.default.removeItem(atPath: store.home.appending("child/link").string)
        }
    }

    @Test("a missing l/ entry is reported and rebuilt")
    func missingShortLink() throws {
        try expectRepaired(.missingShortLink) { store, _ in
            let short = try shortName(store, "base")
            try FileManager.default.removeItem(atPath: store.home.appending("l/\(short)").string)
        }
    }

    @Test("missing work and merged directories are remade")
    func missingDirectories() throws {
        try expectRepaired(.missingDirectory) { store, _ in
            try FileManager.default.removeItem(atPath: store.home.appending("top/work").string)
            try FileManager.default.removeItem(atPath: store.home.appending("base/empty").string)
        }
    }

    @Test("stale staging directories (create, remove, apply leftovers) are removed")
    func staleStaging() throws {
        try expectRepaired(.staleStaging) { store, _ in
            let fm = FileManager.default
            try fm.createDirectory(atPath: store.home.appending("staging/create-x-1234/diff").string, withIntermediateDirectories: true)
            try fm.createDirectory(atPath: store.home.appending("staging/remove-y-99/diff/a").string, withIntermediateDirectories: true)
            try fm.createDirectory(atPath: store.home.appending("staging/differ-abc/diff").string, withIntermediateDirectories: true)
            fm.createFile(atPath: store.home.appending("staging/differ-abc/.lock").string, contents: nil)
            try fm.createDirectory(atPath: store.home.appending("base/.diff.apply-1-2").string, withIntermediateDirectories: true)
            fm.createFile(atPath: store.home.appending("base/.link.1.2.tmp").string, contents: nil)
        }
    }

    @Test("a stale apply's mount under staging is unmounted and removed")
    func staleStagingMount() throws {
        try expectRepaired(.staleStaging) { store, _ in
            let dir = store.home.appending("staging/apply-top-1")
            try FileManager.default.createDirectory(atPath: dir.appending("merged").string, withIntermediateDirectories: true)
            try Mounts.mount(source: "tmpfs", target: dir.appending("merged"), type: "tmpfs", flags: [])
        }
    }

    @Test("a feature probe killed with its overlay mounted is unmounted and removed")
    func staleProbe() throws {
        try expectRepaired(.staleStaging) { store, _ in
            var pid: Int32 = 4_000_000
            while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
            let merged = store.home.appending(".probe-\(pid)-abc/nativediff/merged")
            try FileManager.default.createDirectory(atPath: merged.string, withIntermediateDirectories: true)
            try Mounts.mount(source: "tmpfs", target: merged, type: "tmpfs", flags: [])
        }
    }

    @Test("a differ's staging directory held by its lock is left alone")
    func heldStaging() throws {
        let (store, driver) = try makeStore()
        defer { store.destroy() }
        let dir = store.home.appending("staging/differ-held")
        try FileManager.default.createDirectory(atPath: dir.appending("diff").string, withIntermediateDirectories: true)
        let fd = open(dir.appending(".lock").string, O_CREAT | O_RDWR, 0o600)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX) == 0)
        #expect(try driver.check(repair: true).isClean)
        #expect(FileManager.default.fileExists(atPath: dir.string))
    }

    @Test("a half-made layer directory (no diff) is removed")
    func halfMade() throws {
        try expectRepaired(.halfMadeLayer) { store, _ in
            try FileManager.default.createDirectory(atPath: store.home.appending("half/work").string, withIntermediateDirectories: true)
        }
    }

    @Test("an orphan l/ entry is removed")
    func orphanLink() throws {
        try expectRepaired(.orphanLink) { store, _ in
            try FileManager.default.createSymbolicLink(atPath: store.home.appending("l/AAAAAAAAAAAAAAAAAAAAAAAAAA").string,
                                                       withDestinationPath: "../gone/diff")
            try FileManager.default.createSymbolicLink(atPath: store.home.appending("l/junk").string, withDestinationPath: "/nowhere")
        }
    }

    @Test("a mount whose count is 0 is unmounted")
    func leakedMount() throws {
        try expectRepaired(.leakedMount) { store, driver in
            _ = try driver.get(try LayerID("top"), options: MountOptions())
            try FileManager.default.removeItem(atPath: store.runHome.appending("mounts/top").string)
        }
    }

    @Test("a count with nothing mounted is reset")
    func staleCount() throws {
        try expectRepaired(.staleMountCount) { store, driver in
            let merged = try driver.get(try LayerID("top"), options: MountOptions())
            try Mounts.unmount(merged)
            try "3\n".write(toFile: store.runHome.appending("mounts/ghost").string, atomically: false, encoding: .utf8)
        }
    }

    @Test("a lower chain that cannot be repaired stays reported")
    func brokenLower() throws {
        let (store, driver) = try makeStore()
        defer { store.destroy() }
        try "l/BBBBBBBBBBBBBBBBBBBBBBBBBB".write(toFile: store.home.appending("child/lower").string, atomically: true, encoding: .utf8)
        let report = try driver.check(repair: true)
        #expect(report.problems.contains { $0.kind == .brokenLower })
        #expect(report.remaining.contains { $0.kind == .brokenLower })
        #expect(!report.isClean)
    }
}
