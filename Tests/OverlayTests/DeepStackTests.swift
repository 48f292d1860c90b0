import DriverConformance
import Foundation
import GraphDriver
@testable import Overlay
import StrataSystem
import SystemPackage
import Testing

/// Builds a chain of `count` layers whose layer `i` holds `file<i>`, writing straight into
/// each layer's upper directory (no mount needed).
func buildChain(_ driver: OverlayDriver, count: Int, prefix: String = "layer") throws -> [LayerID] {
    var layers: [LayerID] = []
    for i in 0..<count {
        let layer = try LayerID("\(prefix)\(i)")
        try driver.create(layer, parent: layers.last, options: CreateOptions())
        try Files.write("\(i)", at: "file\(i)", in: driver.home.appending("\(layer)/diff"))
        layers.append(layer)
    }
    return layers
}

/// Expects `merged` to hold exactly `file0` … `file<count - 1>`, each with its layer's content.
func expectEveryLayerFile(in merged: FilePath, count: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(Set(try Files.list(in: merged)) == Set((0..<count).map { "file\($0)" }), sourceLocation: sourceLocation)
    let wrong = (0..<count).filter { Files.read("file\($0)", in: merged) != "\($0)" }
    #expect(wrong.isEmpty, "files with the wrong content or missing: \(wrong.map { "file\($0)" })", sourceLocation: sourceLocation)
}

@Suite("Deep stacks", needsRoot, .serialized)
struct DeepStackTests {
    @Test("a chain of 500 layers mounts and shows every layer's file; a 501st is refused")
    func fiveHundred() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 500)
        let top = layers.last!

        // Read-only: the top's own diff plus 499 parents = 500 lower layers.
        var merged = try driver.get(top, options: MountOptions(readOnly: true))
        try expectEveryLayerFile(in: merged, count: 500)
        try driver.put(top)

        // Read-write: 499 lowers and the upper.
        merged = try driver.get(top, options: MountOptions())
        try expectEveryLayerFile(in: merged, count: 500)
        try Files.write("new", at: "file0", in: merged)
        try driver.put(top)
        #expect(store.mounts().isEmpty)

        #expect {
            try driver.create(LayerID("layer500"), parent: top, options: CreateOptions())
        } throws: { error in
            let e = error as! StorageError
            return e.code == .invalidArgument && e.reason.contains("500")
        }
        #expect(!driver.exists(try LayerID("layer500")))
    }

    @Test("a writable layer on 500 ancestors mounts (500 lowers and the upper); read-only, it is one too many")
    func writableOnFiveHundred() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 500)
        let container = try LayerID("container")
        try driver.createReadWrite(container, parent: layers.last, options: CreateOptions())
        let merged = try driver.get(container, options: MountOptions())
        try expectEveryLayerFile(in: merged, count: 500)
        try Files.write("mine", at: "own", in: merged)
        #expect(Files.read("own", in: store.home.appending("container/diff")) == "mine")
        try driver.put(container)

        // Mounted read-only, its own diff is a 501st lower: the mount-time guard says so.
        #expect {
            try driver.get(container, options: MountOptions(readOnly: true))
        } throws: { error in
            let e = error as! StorageError
            return e.code == .invalidArgument && e.reason.contains("501 lower layers") && e.reason.contains("500")
        }
        // Create-time guards: a read-only layer 501 deep, and anything on the container.
        #expect {
            try driver.create(LayerID("image501"), parent: layers.last, options: CreateOptions())
        } throws: { error in
            let e = error as! StorageError
            return e.code == .invalidArgument && e.reason.contains("501 layers deep")
        }
        #expect {
            try driver.createReadWrite(LayerID("on-container"), parent: container, options: CreateOptions())
        } throws: { error in
            let e = error as! StorageError
            return e.code == .invalidArgument && e.reason.contains("502 layers deep")
        }
        #expect(!driver.exists(try LayerID("image501")))
        #expect(!driver.exists(try LayerID("on-container")))
        #expect(store.mounts().isEmpty)
    }

    @Test("a read-write layer over 1, 100 and 128 lowers shows every lower's file")
    func depths() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 129)
        for depth in [1, 100, 128] {
            let layer = try LayerID("rw\(depth)")
            try driver.createReadWrite(layer, parent: layers[depth - 1], options: CreateOptions())
            let merged = try driver.get(layer, options: MountOptions())
            try expectEveryLayerFile(in: merged, count: depth)
            try driver.put(layer)
        }
        #expect(store.mounts().isEmpty)
    }
}

@Suite("Older kernels' mount path", needsRoot)
struct ClassicMountTests {
    @Test("without lowerdir+, 128 layers mount with short links relative to the home, and the process's directory stays")
    func relativeShortLinks() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        driver.preferClassicMount = true
        let layers = try buildChain(driver, count: 128)
        let before = FileManager.default.currentDirectoryPath
        let merged = try driver.get(layers[127], options: MountOptions(readOnly: true))
        #expect(try Files.list(in: merged).count == 128)
        let entry = try #require(Mounts.mountTable().first { $0.mountPoint == merged.string })
        #expect(entry.superOptions.contains("lowerdir=layer127/diff:l/"), "\(entry.superOptions.prefix(80))")
        try driver.put(layers[127])
        #expect(FileManager.default.currentDirectoryPath == before)
        // Deeper than a page of relative links (about 140 layers) is refused, clearly.
        let deep = try buildChain(driver, count: 160, prefix: "deep")
        #expect { try driver.get(deep[159], options: MountOptions()) } throws: {
            ($0 as! StorageError).code == .unsupported && ($0 as! StorageError).reason.contains("lowerdir+")
        }
        #expect(store.mounts().isEmpty)
    }
}
