import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Checks that the store is whole: every listed layer has its short link and link file, every
/// short link points at a listed layer, nothing is mounted and no staging leftovers remain.
func checkStoreConsistent(_ store: TemporaryStore, _ driver: OverlayDriver, expected: Set<LayerID>) throws {
    let layers = Set(try driver.listLayers())
    #expect(layers == expected)
    let links = try Files.list("l", in: store.home)
    #expect(links.count == layers.count)
    for name in links {
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: store.home.appending("l/\(name)").string)
        #expect(layers.contains { "../\($0)/diff" == target }, "short link \(name) -> \(target) names no layer")
    }
    for layer in layers {
        let link = try #require(Files.read("\(layer)/link", in: store.home))
        #expect(links.contains(link))
    }
    #expect(store.mounts().isEmpty, "mounts leaked: \(store.mounts())")
    #expect(try Files.list("staging", in: store.home).isEmpty)
}

@Suite("Concurrency", needsRoot, .serialized)
struct ConcurrencyTests {
    @Test("threads creating, mounting and removing on one store")
    func threads() async throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base")
        try driver.createReadWrite(base, parent: nil, options: CreateOptions())
        try Files.write("base", at: "base", in: store.home.appending("base/diff"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask { try churn(driver, prefix: "t\(t)", count: 10, base: base) }
            }
            try await group.waitForAll()
        }
        var expected: Set<LayerID> = [base]
        for t in 0..<4 { for i in stride(from: 1, to: 10, by: 2) { expected.insert(try LayerID("t\(t)-\(i)")) } }
        try checkStoreConsistent(store, driver, expected: expected)
    }

    @Test("processes creating, mounting and removing on one store, and racing for one ID")
    func processes() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base")
        try driver.createReadWrite(base, parent: nil, options: CreateOptions())
        try Files.write("base", at: "base", in: store.home.appending("base/diff"))
        let children = try (0..<3).map { try ChildProcess.start(store, ["churn p\($0) 8 base"]) }
        try churn(driver, prefix: "parent", count: 8, base: base)
        for child in children {
            child.waitUntilExit()
            #expect(child.terminationStatus == 0, "\(ChildProcess.errors(store))")
        }
        var expected: Set<LayerID> = [base]
        for prefix in ["p0", "p1", "p2", "parent"] {
            for i in stride(from: 1, to: 8, by: 2) { expected.insert(try LayerID("\(prefix)-\(i)")) }
        }
        try checkStoreConsistent(store, driver, expected: expected)

        // Many processes mount and unmount one layer at once: it ends unmounted, count 0.
        let racers = try (0..<4).map { _ in
            try ChildProcess.start(store, Array(repeating: ["get base", "put base"], count: 10).flatMap { $0 })
        }
        for racer in racers {
            racer.waitUntilExit()
            #expect(racer.terminationStatus == 0, "\(ChildProcess.errors(store))")
        }
        #expect(store.mounts().isEmpty)
        #expect(Files.read("mounts/base", in: store.runHome) == "0\n")
    }
}
