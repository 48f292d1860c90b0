import DriverConformance
import Foundation
import GraphDriver
import IDShift
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Remaps that do not finish: a crash (a child process killed with SIGKILL at a chosen entry by
/// the shifter's fault injection) or a failure in process. Either way the layer must end up as
/// it was — owners, modes, capabilities, ACLs, its `diff` names and its `idmaps` — once
/// `cleanup` (or `check --repair`) has run, and `check` must then pass.
@Suite("Remap rollback", .serialized, needsRoot)
struct RemapRollbackTests {
    static let mapped = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                                   gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])

    /// A driver on `store` whose shifter is the real chown walk, with `fault` injected.
    /// It copies a child's parents into `diff1` (the path kernels without idmapped lowers take).
    private func driver(_ store: TemporaryStore, fault: ShiftFaultInjection? = nil) throws -> OverlayDriver {
        let driver = try OverlayDriver(home: store.home, runHome: store.runHome, options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                       shifter: LayerShifter(home: store.home, options: ShiftOptions(threads: 1, faultInjection: fault)))
        driver.shiftsParentsByCopy = true
        return driver
    }

    /// Every name below `directory` with its kind, owner, mode and every extended attribute but
    /// overlayfs's own (`trusted.overlay.*`: any mount of a layer writes `impure`, `origin` and
    /// `uuid` into its upper directory; a shift neither reads nor writes them).
    private func snapshot(_ directory: FilePath) throws -> String {
        try sh("""
            cd '\(directory)' && find . -printf '%p %y %U:%G %m\\n' | sort
            getfattr -R -P -d -m '^(security|system|user)\\.' -e hex . 2>/dev/null
            """)
    }

    /// A base layer `base`: directories, files of several owners, setuid, a capability, an ACL,
    /// a hard link and a name that is not UTF-8.
    private func makeBase(_ driver: OverlayDriver) throws -> FilePath {
        let base = try LayerID("base")
        try driver.create(base, parent: nil, options: CreateOptions())
        let diff = driver.home.appending("base/diff")
        try sh("""
            set -e; cd '\(diff)'
            mkdir -p etc usr/bin shared "$(printf 'x\\377')"
            for i in 1 2 3 4 5 6; do echo $i > usr/bin/tool$i; done
            echo a > etc/passwd; echo b > shared/theirs; echo c > gone; echo d > "$(printf 'x\\377/f\\300')"
            ln usr/bin/tool1 usr/bin/hard
            chown 1000:1001 usr/bin/tool2 etc/passwd; chown 33:34 "$(printf 'x\\377/f\\300')"
            chmod 4755 usr/bin/tool3; chmod 2755 usr/bin/tool4
            setcap cap_net_raw+ep usr/bin/tool5
            setfacl -m u:1002:rw,g:1003:r etc/passwd
            """)
        return diff
    }

    /// A child layer `child` on `base` with its own files: one new, one in a directory the base
    /// has too, and a whiteout of a base file.
    private func makeChild(_ driver: OverlayDriver) throws -> FilePath {
        try driver.create(try LayerID("child"), parent: try LayerID("base"), options: CreateOptions())
        let diff = driver.home.appending("child/diff")
        try sh("""
            set -e; cd '\(diff)'
            mkdir shared; echo mine > shared/mine; echo own > own; mknod gone c 0 0
            chown 1000:1000 own; chmod 4755 own
            """)
        return diff
    }

    /// The number of entries a remap of `tree` (as the driver would see it) changes.
    private func entries(_ tree: FilePath) throws -> Int {
        try ChownShifter().prepare(tree: tree, from: .identity, to: Self.mapped).entryCount
    }

    /// Runs the remap in a child process that kills itself after `killAfter` entries.
    private func crashRemap(_ store: TemporaryStore, _ layer: String, killAfter: Int, in tree: String? = nil) throws {
        let process = try ChildProcess.start(store, ["remap \(layer) 0:100000:65536 \(killAfter)" + (tree.map { " " + $0 } ?? "")])
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL,
                "the remap was not killed: \(process.terminationReason) \(process.terminationStatus) \(ChildProcess.errors(store))")
    }

    private func exists(_ store: TemporaryStore, _ path: String) -> Bool {
        Files.exists(path, in: store.home)
    }

    /// What every rollback must give: the layer as before, no remap files, the old mapping, no
    /// mount, `check` clean; and a remap run afterwards works.
    private func expectRolledBack(_ store: TemporaryStore, _ driver: OverlayDriver, layer: String, diff: FilePath,
                                  before: String) throws {
        #expect(try snapshot(diff) == before)
        for name in ["remapping", "remapping.undo", "remapping.undo.new", "idmaps", "diff1", "diff1.staging", "work1.staging"] {
            #expect(!exists(store, "\(layer)/\(name)"), "\(layer)/\(name) is left")
        }
        #expect(try driver.idMappings(of: LayerID(layer)) == .identity)
        #expect(store.mounts().isEmpty, "\(store.mounts())")
        let check = try driver.check(repair: false)
        #expect(check.isClean, "\(check.problems)")
        // The layer still mounts, and a remap now finishes.
        let merged = try driver.get(LayerID(layer), options: MountOptions())
        #expect(try FileDescriptor.currentWorkingDirectory.status(at: merged.appending("usr/bin/tool2")).userID.rawValue == 1000)
        try driver.put(LayerID(layer))
        try driver.updateLayerIDMap(LayerID(layer), toContainer: .identity, toHost: Self.mapped, mountLabel: nil)
        #expect(try driver.idMappings(of: LayerID(layer)) == Self.mapped)
        #expect(try sh("cd '\(diff)' && find . ! -type c ! -uid 100000 ! -uid 101000 ! -uid 100033 | wc -l") == "0\n")
        if layer == "child" {
            // The parents' files have a shifted copy below the layer's own: every name, both
            // names of the hard link included, shows shifted, and `diff` holds only its own.
            #expect(exists(store, "child/diff1"))
            let shifted = try driver.get(LayerID(layer), options: MountOptions())
            #expect(try sh("cd '\(shifted)' && find . ! -uid 100000 ! -uid 101000 ! -uid 100033 | wc -l") == "0\n")
            #expect(try sh("stat -c '%u %h' '\(shifted)/usr/bin/hard' '\(shifted)/usr/bin/tool1'") == "100000 1\n100000 1\n")
            #expect(try sh("cat '\(shifted)/usr/bin/hard'") == "1\n")
            try driver.put(LayerID(layer))
            #expect(try sh("cd '\(diff)' && find . | sort") == ".\n./gone\n./own\n./shared\n./shared/mine\n")
        }
        #expect(try driver.check(repair: false).isClean)
        #expect(store.mounts().isEmpty, "\(store.mounts())")
    }

    @Test("a base layer's remap killed before, during and after changing files is rolled back by cleanup",
          arguments: [0, 5, -1])
    func baseLayerCrash(killAfter: Int) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        let diff = try makeBase(driver)
        let before = try snapshot(diff)
        let total = try entries(diff)
        #expect(total == 16)
        try crashRemap(store, "base", killAfter: killAfter < 0 ? total : killAfter)
        #expect(exists(store, "base/remapping") && exists(store, "base/remapping.undo"))
        if killAfter != 0 { #expect(try snapshot(diff) != before) }

        let found = try driver.check(repair: false)
        let problem = found.problems.first { $0.kind == .interruptedRemap }
        #expect(problem?.detail.contains("strata cleanup or check --repair rolls it back") == true, "\(found.problems)")
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "base", diff: diff, before: before)
    }

    @Test("a child layer's remap killed while copying its parents' owners leaves only the copy, which cleanup removes",
          arguments: [0, 9, -1])
    func childLayerCrashWhileCopying(killAfter: Int) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        let diff = try makeChild(driver)
        let before = try snapshot(diff)
        // The copy's walk goes through a mount of the parents: every name, both of a hard link.
        let total = try entries(driver.home.appending("base/diff")) + 1
        try crashRemap(store, "child", killAfter: killAfter < 0 ? total : killAfter, in: "merged")
        #expect(exists(store, "child/remapping") && !exists(store, "child/remapping.undo"))
        #expect(exists(store, "child/diff1.staging") && !exists(store, "child/diff1"))
        #expect(!store.mounts().isEmpty, "the killed remap's mount is gone")
        #expect(try snapshot(diff) == before)
        #expect(try driver.check(repair: false).problems.contains { $0.kind == .interruptedRemap })
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "child", diff: diff, before: before)
    }

    @Test("a child layer's remap killed while shifting its own files is unmounted and restored by cleanup",
          arguments: [0, 2, -1])
    func childLayerCrash(killAfter: Int) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        let diff = try makeChild(driver)
        let before = try snapshot(diff)
        let total = try entries(diff)
        #expect(total == 5)
        try crashRemap(store, "child", killAfter: killAfter < 0 ? total : killAfter, in: "diff")
        #expect(exists(store, "child/remapping") && exists(store, "child/remapping.undo"))
        // The copy is complete but not renamed in; its mount is gone.
        #expect(exists(store, "child/diff1.staging") && !exists(store, "child/diff1"))
        #expect(store.mounts().isEmpty, "\(store.mounts())")
        if killAfter != 0 { #expect(try snapshot(diff) != before) }

        #expect(try driver.check(repair: false).problems.contains { $0.kind == .interruptedRemap })
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "child", diff: diff, before: before)
    }

    @Test("killed after the copy was renamed in: the rollback removes it with the journal's owners put back")
    func childKilledAfterInstalling() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        let diff = try makeChild(driver)
        let before = try snapshot(diff)
        try crashRemap(store, "child", killAfter: try entries(diff), in: "diff")
        // What the remap does next: rename the copy in, then record the new mapping.
        try FileManager.default.moveItem(atPath: store.home.appending("child/diff1.staging").string,
                                         toPath: store.home.appending("child/diff1").string)
        try "uid 0:100000:65536\ngid 0:100000:65536\n".write(toFile: store.home.appending("child/idmaps").string,
                                                          atomically: true, encoding: .utf8)
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "child", diff: diff, before: before)
    }

    @Test("check --repair rolls back an interrupted remap too")
    func repairRollsBack() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        let diff = try makeChild(driver)
        let before = try snapshot(diff)
        try crashRemap(store, "child", killAfter: 4, in: "diff")
        let report = try driver.check(repair: true)
        #expect(report.repairs.contains { $0.hasPrefix("rolled back interrupted remap: ") }, "\(report.repairs)")
        #expect(report.isClean, "\(report.remaining)")
        try expectRolledBack(store, driver, layer: "child", diff: diff, before: before)
    }

    @Test("killed after idmaps were recorded: the rollback puts the old idmaps back with the old owners")
    func killedAfterRecording() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        let diff = try makeBase(driver)
        let before = try snapshot(diff)
        try crashRemap(store, "base", killAfter: try entries(diff))
        // What the remap does next: sync, then record the new mapping (before removing its journal).
        try "uid 0:100000:65536\ngid 0:100000:65536\n".write(toFile: store.home.appending("base/idmaps").string,
                                                          atomically: true, encoding: .utf8)
        #expect(try driver.idMappings(of: LayerID("base")) == Self.mapped)
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "base", diff: diff, before: before)
    }

    @Test("a marker without a journal (killed before the journal was whole, or after it was removed) is only removed")
    func markerWithoutJournal() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        let diff = try makeBase(driver)
        let before = try snapshot(diff)
        // A marker naming a process that has exited, and half a journal being written.
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let stamp = "\(dead.processIdentifier) 1\nuid \ngid \nuid 0:100000:65536\ngid 0:100000:65536\nuid \ngid \n"
        try stamp.write(toFile: store.home.appending("base/remapping").string, atomically: true, encoding: .utf8)
        try "STRATA-SHIFT".write(toFile: store.home.appending("base/remapping.undo.new").string, atomically: true, encoding: .utf8)
        let found = try driver.check(repair: false)
        #expect(found.problems.contains { $0.kind == .interruptedRemap && $0.detail.contains("removes its marker") }, "\(found.problems)")
        #expect(found.problems.contains { $0.kind == .staleStaging }, "\(found.problems)")
        try driver.cleanup()
        try expectRolledBack(store, driver, layer: "base", diff: diff, before: before)
    }

    @Test("a remap that fails part-way leaves the layer as it was", arguments: ["base", "child"])
    func failureInProcess(layer: String) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let plain = try driver(store)
        var diff = try makeBase(plain)
        if layer == "child" { diff = try makeChild(plain) }
        let before = try snapshot(diff)
        let failing = try driver(store, fault: .fail(afterEntries: 6))
        #expect { try failing.updateLayerIDMap(LayerID(layer), toContainer: .identity, toHost: Self.mapped, mountLabel: nil) }
            throws: { ($0 as? StorageError)?.reason == "fault injection: stopped after 6 entries" }
        try expectRolledBack(store, plain, layer: layer, diff: diff, before: before)
    }

    @Test("a planning failure (an ID the new mapping cannot hold) changes nothing and leaves no marker", arguments: ["base", "child"])
    func unmappable(layer: String) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        var diff = try makeBase(driver)
        if layer == "child" { diff = try makeChild(driver) }
        let before = try snapshot(diff)
        let narrow = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 100)],
                                gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 100)])
        #expect { try driver.updateLayerIDMap(LayerID(layer), toContainer: .identity, toHost: narrow, mountLabel: nil) }
            throws: { ($0 as? StorageError)?.code == .invalidArgument }
        try expectRolledBack(store, driver, layer: layer, diff: diff, before: before)
    }

    @Test("a mounted layer, base or child, is not remapped", arguments: ["base", "child"])
    func mountedRefused(layer: String) throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        _ = try makeChild(driver)
        _ = try driver.get(LayerID(layer), options: MountOptions())
        #expect { try driver.updateLayerIDMap(LayerID(layer), toContainer: .identity, toHost: Self.mapped, mountLabel: nil) }
            throws: { ($0 as? StorageError)?.code == .busy }
        #expect(!exists(store, "\(layer)/remapping"))
        try driver.put(LayerID(layer))
    }

    @Test("mounting a layer first rolls back its interrupted remap (and the remap's own mount)")
    func getRollsBack() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        _ = try makeBase(driver)
        let diff = try makeChild(driver)
        let before = try snapshot(diff)
        try crashRemap(store, "child", killAfter: 3, in: "diff")
        #expect(try snapshot(diff) != before)
        let merged = try driver.get(LayerID("child"), options: MountOptions())
        #expect(try FileDescriptor.currentWorkingDirectory.status(at: merged.appending("etc/passwd")).userID.rawValue == 1000)
        #expect(!exists(store, "child/remapping") && !exists(store, "child/remapping.undo"))
        try driver.put(LayerID("child"))
        try expectRolledBack(store, driver, layer: "child", diff: diff, before: before)
    }

    @Test("a new remap first rolls back the interrupted one")
    func remapAfterCrash() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try driver(store)
        let diff = try makeBase(driver)
        try crashRemap(store, "base", killAfter: 7)
        let other = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 300_000, size: 65536)],
                               gidMap: [IDMap(containerID: 0, hostID: 300_000, size: 65536)])
        try driver.updateLayerIDMap(LayerID("base"), toContainer: .identity, toHost: other, mountLabel: nil)
        #expect(try driver.idMappings(of: LayerID("base")) == other)
        #expect(try sh("cd '\(diff)' && find . ! -uid 300000 ! -uid 301000 ! -uid 300033 | wc -l") == "0\n")
        #expect(try driver.check(repair: false).isClean)
    }
}
