import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

@Suite("Mount counts and removal", needsRoot)
struct MountCountTests {
    @Test("mount counts are shared by processes: mount twice, unmount once, still mounted")
    func acrossProcesses() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layer = try LayerID("counted")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        let merged = try driver.get(layer, options: MountOptions())
        #expect(store.mounts() == [merged.string])
        #expect(try ChildProcess.run(store, ["get counted"]) == 0)
        try driver.put(layer)
        #expect(store.mounts() == [merged.string], "one put of two gets unmounted the layer")
        #expect(try ChildProcess.run(store, ["put counted"]) == 0)
        #expect(store.mounts().isEmpty, "the last put (in another process) left the layer mounted")
        // mount twice and unmount once, each in its own process
        #expect(try ChildProcess.run(store, ["get counted"]) == 0)
        #expect(try ChildProcess.run(store, ["get counted"]) == 0)
        #expect(try ChildProcess.run(store, ["put counted"]) == 0)
        #expect(store.mounts() == [merged.string])
        #expect(try ChildProcess.run(store, ["put counted"]) == 0)
        #expect(store.mounts().isEmpty)
    }

    @Test("a count resyncs when something else unmounted the layer")
    func resync() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layer = try LayerID("resync")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        let merged = try driver.get(layer, options: MountOptions())
        _ = try driver.get(layer, options: MountOptions())
        try Mounts.unmount(merged)
        // The count says 2, but nothing is mounted: a get mounts afresh and one put unmounts.
        #expect(try driver.get(layer, options: MountOptions()) == merged)
        #expect(store.mounts() == [merged.string])
        try driver.put(layer)
        #expect(store.mounts().isEmpty)
        try driver.put(layer)  // an extra put is harmless
        #expect(try Files.list(in: merged).isEmpty)
    }

    @Test("put leaves a fresh, empty merged directory")
    func freshMerged() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layer = try LayerID("fresh")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        let merged = try driver.get(layer, options: MountOptions())
        try Files.write("x", at: "x", in: merged)
        try driver.put(layer)
        #expect(try Files.list(in: merged).isEmpty)
        #expect(!Files.exists("merged.1", in: store.home.appending("fresh")))
    }

    @Test("remove while mounted unmounts first")
    func removeWhileMounted() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base"), top = try LayerID("top")
        try driver.createReadWrite(base, parent: nil, options: CreateOptions())
        try driver.createReadWrite(top, parent: base, options: CreateOptions())
        _ = try driver.get(top, options: MountOptions())
        _ = try driver.get(top, options: MountOptions())
        let busy = try FileDescriptor.open(store.home.appending("top/merged"), .readOnly)  // keep it busy
        try driver.remove(top)
        try? busy.close()
        #expect(!driver.exists(top))
        #expect(store.mounts().isEmpty)
        #expect(try Files.list("l", in: store.home).count == 1, "the removed layer's short link stayed")
        #expect(!Files.exists("mounts/top", in: store.runHome), "the removed layer's mount count stayed")
        try driver.remove(top)  // idempotent
        try driver.createReadWrite(top, parent: base, options: CreateOptions())
        _ = try driver.get(top, options: MountOptions())
        try driver.put(top)
        #expect(store.mounts().isEmpty, "a recreated layer inherited the old mount count")
    }
}
