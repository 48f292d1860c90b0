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

func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
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
        var merged = FilePath()
        let mountTime = try milliseconds { merged = try driver.get(top, options: MountOptions(readOnly: true)) }
        let names = try Files.list(in: merged)
        #expect(names.count == 500)
        for i in [0, 1, 127, 128, 250, 498, 499] {
            #expect(Files.read("file\(i)", in: merged) == "\(i)")
        }
        let unmountTime = try milliseconds { try driver.put(top) }
        print("500-layer read-only mount: \(mountTime) ms, unmount: \(unmountTime) ms")

        // Read-write: 499 lowers and the upper.
        merged = try driver.get(top, options: MountOptions())
        #expect(try Files.list(in: merged).count == 500)
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

    @Test("mount and unmount timings with 1, 100, 128 lowers")
    func timings() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 129)
        for depth in [1, 100, 128] {
            let layer = try LayerID("rw\(depth)")
            try driver.createReadWrite(layer, parent: layers[depth - 1], options: CreateOptions())
            var mounts: [Double] = [], unmounts: [Double] = []
            for _ in 0..<20 {
                mounts.append(try milliseconds { _ = try driver.get(layer, options: MountOptions()) })
                unmounts.append(try milliseconds { try driver.put(layer) })
            }
            mounts.sort()
            unmounts.sort()
            print("with \(depth) lowers: mount median \(mounts[10]) ms, unmount median \(unmounts[10]) ms")
            let merged = try driver.get(layer, options: MountOptions())
            #expect(try Files.list(in: merged).count == depth)
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
