import DriverConformance
import Foundation
import GraphDriver
import Overlay
import SystemPackage
import Testing

/// A layer root's mode, through the driver API, as containers/storage 1.43 makes it: 0555 for a
/// base layer (read-only, writable, staged), the parent's for a child.
@Suite("Layer root modes", needsRoot)
struct RootModeTests {
    /// Applies a tar made by `python` to `layer` through a staging directory, whose root is
    /// expected to have `stagedMode` once the differ is done.
    func staged(_ driver: OverlayDriver, _ store: TemporaryStore, _ layer: LayerID, parent: LayerID?, python: String,
                stagedMode: UInt32 = 0o555) throws {
        let tar = store.root.appending("\(layer).tar")
        try writeTar(tar, python: python)
        let fd = try FileDescriptor.open(tar, .readOnly)
        defer { try? fd.close() }
        let output = try driver.applyDiffWithDiffer(options: DifferOptions(), differ: TarDiffer(input: fd))
        #expect(try Files.mode(of: output.target) == stagedMode, "a staging directory's root")
        try driver.applyDiffFromStagingDirectory(layer, parent: parent, output: output, options: DifferOptions())
    }

    @Test("base layers' roots are 0555; children's take the parent's; a staged apply keeps the layer's mode")
    func rootModes() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let image = try LayerID("image"), container = try LayerID("container"), stagedBase = try LayerID("staged-base")
        try driver.create(image, parent: nil, options: CreateOptions())
        try driver.createReadWrite(container, parent: nil, options: CreateOptions())
        try driver.create(stagedBase, parent: nil, options: CreateOptions())
        try staged(driver, store, stagedBase, parent: nil, python: "add('etc/hostname', b'x')")
        for layer in [image, container, stagedBase] {
            #expect(try Files.mode(of: store.home.appending("\(layer)/diff")) == 0o555, "\(layer)")
        }

        #expect(chmod(store.home.appending("image/diff").string, 0o751) == 0)
        let child = try LayerID("child"), stagedChild = try LayerID("staged-child"), ownRoot = try LayerID("own-root")
        try driver.create(child, parent: image, options: CreateOptions())
        try driver.create(stagedChild, parent: image, options: CreateOptions())
        try staged(driver, store, stagedChild, parent: image, python: "add('etc/hostname', b'y')")
        // A stream's own `./` entry is applied (as umoci does; containers/storage ignores it).
        try driver.create(ownRoot, parent: image, options: CreateOptions())
        try staged(driver, store, ownRoot, parent: image, python: "add('.', type=tarfile.DIRTYPE, mode=0o700)",
                   stagedMode: 0o700)
        #expect(try Files.mode(of: store.home.appending("child/diff")) == 0o751)
        #expect(try Files.mode(of: store.home.appending("staged-child/diff")) == 0o751)
        #expect(try Files.mode(of: store.home.appending("own-root/diff")) == 0o700)
        let merged = try driver.get(stagedChild, options: MountOptions(readOnly: true))
        defer { try? driver.put(stagedChild) }
        #expect(try Files.mode(of: merged) == 0o751)
        #expect(Files.read("etc/hostname", in: merged) == "y")
    }
}
