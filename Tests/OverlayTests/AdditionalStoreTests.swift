import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

@Suite("Additional stores", needsRoot)
struct AdditionalStoreTests {
    @Test("layers of an additional image store are found, stacked on and mounted read-only under the run home")
    func additionalImageStore() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        // Fill a store with an ordinary driver, then use it read-only from another home.
        let shared = store.root.appending("shared")
        let producer = try OverlayDriver(home: shared.appending("overlay"), runHome: store.root.appending("run-shared"),
                                         options: DriverOptions(parsing: ["skip_mount_home=true"]))
        let layers = try buildChain(producer, count: 3, prefix: "img")
        let driver = try store.driver(["skip_mount_home=true", "additionalimagestore=\(shared)"])
        #expect(driver.additionalImageStores() == [shared])
        #expect(driver.exists(layers[2]))
        #expect(try driver.listLayers().isEmpty, "layers of a read-only store are listed as the home's")
        let merged = try driver.get(layers[2], options: MountOptions())
        #expect(merged == store.runHome.appending("img2/merged"))
        #expect(try Files.list(in: merged) == ["file0", "file1", "file2"])
        #expect(throws: (any Error).self) { try Files.write("x", at: "x", in: merged) }
        try driver.put(layers[2])
        #expect(throws: StorageError.self) { try driver.remove(layers[2]) }
        // A container layer in the home on top of an image store layer.
        let container = try LayerID("container")
        try driver.createReadWrite(container, parent: layers[2], options: CreateOptions())
        let root = try driver.get(container, options: MountOptions())
        #expect(try Files.list(in: root) == ["file0", "file1", "file2"])
        try Files.write("mine", at: "file3", in: root)
        try driver.put(container)
        #expect(store.mounts().isEmpty)
    }

    @Test("with imagestore, read-only layers are made there and container layers in the home")
    func imageStore() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let images = store.root.appending("images")
        let driver = try store.driver(["skip_mount_home=true", "imagestore=\(images)"])
        let image = try LayerID("image"), container = try LayerID("container")
        try driver.create(image, parent: nil, options: CreateOptions())
        try Files.write("image", at: "f", in: images.appending("overlay/image/diff"))
        try driver.createReadWrite(container, parent: image, options: CreateOptions())
        #expect(Files.exists("overlay/image/link", in: images))
        #expect(Files.exists("container/lower", in: store.home))
        #expect(try driver.listLayers() == [container, image])
        let root = try driver.get(container, options: MountOptions())
        #expect(Files.read("f", in: root) == "image")
        try driver.put(container)
        #expect(try driver.changes(container, parent: image).isEmpty)
        try driver.remove(container)
        try driver.remove(image)
        #expect(try driver.listLayers().isEmpty)
        #expect(try Files.list("overlay/l", in: images).isEmpty)
    }

    @Test("additional layer stores: lookup by digest (with and without reference), createAs, lookup by ID")
    func additionalLayerStore() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let reference = "registry.example/app:1"
        let plain = store.root.appending("als")
        let byReference = store.root.appending("als-ref")
        let refDirectory = byReference.appending(OverlayDriver.referenceDirectoryName(for: reference)).appending(digest)
        for directory in [plain.appending(digest), refDirectory] {
            try Files.write("from the store", at: "diff/app", in: directory)
            try Files.write("{\"size\": 14}", at: "info", in: directory)
            try Files.write("blob", at: "blob", in: directory)
        }
        let driver = try store.driver(["skip_mount_home=true", "additionallayerstore=\(byReference):ref",
                                       "additionallayerstore=\(plain)"])
        let found = try driver.lookupAdditionalLayer(digest: digest, reference: reference)
        #expect(found.digest == digest)
        #expect(found.contents == refDirectory.appending("diff"))
        #expect(String(decoding: try found.info(), as: UTF8.self) == "{\"size\": 14}")
        let blob = try found.blob()
        #expect(String(decoding: try blob.readToEnd(), as: UTF8.self) == "blob")
        try blob.close()
        // Another reference falls through to the plain store.
        let other = try driver.lookupAdditionalLayer(digest: digest, reference: "other/image:2")
        #expect(other.contents == plain.appending(digest).appending("diff"))
        #expect { try driver.lookupAdditionalLayer(digest: "sha256:" + String(repeating: "cd", count: 32), reference: reference) }
            throws: { ($0 as! StorageError).code == .notFound }
        #expect { try driver.lookupAdditionalLayer(digest: "../../etc", reference: reference) }
            throws: { ($0 as! StorageError).code == .invalidArgument }

        let layer = try LayerID("from-store")
        try found.createAs(layer, parent: nil)
        found.release()
        #expect(try driver.lookupAdditionalLayerByID(layer).contents == refDirectory.appending("diff"))
        let merged = try driver.get(layer, options: MountOptions())
        #expect(Files.read("app", in: merged) == "from the store")
        #expect(throws: (any Error).self) { try Files.write("x", at: "x", in: merged) }
        try driver.put(layer)
        let top = try LayerID("top")
        try driver.createReadWrite(top, parent: layer, options: CreateOptions())
        let root = try driver.get(top, options: MountOptions())
        #expect(Files.read("app", in: root) == "from the store")
        try driver.put(top)
        try driver.remove(top)
        try driver.remove(layer)
        #expect(Files.read("diff/app", in: refDirectory) == "from the store", "removing the layer touched the store")
    }
}
