import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Testing

@Suite("Layout, status and link recovery", needsRoot)
struct LayoutTests {
    @Test("the home has containers/storage's layout")
    func layout() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let base = try LayerID("base"), child = try LayerID("child"), grandchild = try LayerID("grandchild")
        try driver.create(base, parent: nil, options: CreateOptions())
        try driver.create(child, parent: base, options: CreateOptions())
        try driver.createReadWrite(grandchild, parent: child, options: CreateOptions())
        #expect(try Files.list("base", in: store.home) == ["diff", "empty", "link", "merged", "work"])
        #expect(try Files.list("child", in: store.home) == ["diff", "link", "lower", "merged", "work"])
        let baseLink = try #require(Files.read("base/link", in: store.home))
        let childLink = try #require(Files.read("child/link", in: store.home))
        #expect(baseLink.count == 26 && childLink.count == 26)
        #expect(baseLink.allSatisfy { ("A"..."Z").contains($0) || ("2"..."7").contains($0) })
        #expect(Files.read("child/lower", in: store.home) == "l/\(baseLink)")
        #expect(Files.read("grandchild/lower", in: store.home) == "l/\(childLink):l/\(baseLink)")
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: store.home.appending("l/\(baseLink)").string)
        #expect(target == "../base/diff")
        let metadata = try driver.metadata(of: grandchild)
        #expect(metadata.map(\.key) == ["LowerDir", "MergedDir", "UpperDir", "WorkDir"])
        #expect(metadata[0].value == "\(store.home)/child/diff:\(store.home)/base/diff")
        #expect(metadata[2].value == "\(store.home)/grandchild/diff")
        #expect(try driver.listLayers() == [base, child, grandchild])
    }

    @Test("status lists what the driver found, in order")
    func status() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        #expect(driver.status.map(\.key) == ["Backing Filesystem", "Supports d_type", "Native Overlay Diff",
                                            "Using metacopy", "Supports shifting", "Supports volatile"])
        #expect(driver.status[0].value == "extfs")
        #expect(driver.status[1].value == "true")
        #expect(driver.features.supportsLowerdirAppend)
        #expect(driver.features.supportsIdmappedLowers, "this kernel (6.18) stacks idmapped lowers on ext4")
        #expect(driver.status[4].value == "false", "shifting needs an ownership shifter; NoShifting was injected")
        #expect(driver.features.nativeDiff, "native diff is off: \(driver.features.nativeDiffReason ?? "?")")
        #expect(driver.status[2].value == "true")
        #expect(driver.features.supportsVolatile)
        #expect(driver.name == "overlay")
        // The probes are cached in the run home for the next process.
        #expect(Files.read("features", in: store.runHome)?.contains("lowerdirappend=true") == true)
        let again = try store.driver()
        #expect(again.features == driver.features)
    }

    @Test("the home is made a private mount unless skip_mount_home, and cleanup undoes it")
    func privateHome() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver([])
        #expect(store.mounts() == [store.home.string])
        let layer = try LayerID("x")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        _ = try driver.get(layer, options: MountOptions(volatile: true))
        try driver.put(layer)
        _ = try driver.get(layer, options: MountOptions(volatile: true))  // the volatile marker does not block a remount
        try driver.put(layer)
        try driver.cleanup()
        #expect(store.mounts().isEmpty)
    }

    @Test("lost short links and link files are rebuilt")
    func linkRecovery() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 5)
        let oldLower = Files.read("layer4/lower", in: store.home)
        // A crash (or a careless cleanup) takes every short link and some link files.
        for name in try Files.list("l", in: store.home) { try Files.remove("l/\(name)", in: store.home) }
        for i in [0, 2, 4] { try Files.remove("layer\(i)/link", in: store.home) }
        let merged = try driver.get(layers[4], options: MountOptions())
        #expect(try Files.list(in: merged).count == 5)
        try driver.put(layers[4])
        for i in 0..<5 {
            #expect(Files.exists("layer\(i)/link", in: store.home))
        }
        #expect(try Files.list("l", in: store.home).count == 5)
        #expect(Files.read("layer4/lower", in: store.home) == oldLower)
        // A child of a layer whose link file is gone finds it again.
        try Files.remove("layer4/link", in: store.home)
        try driver.create(LayerID("layer5"), parent: layers[4], options: CreateOptions())
        let top = try driver.get(LayerID("layer5"), options: MountOptions(readOnly: true))
        #expect(try Files.list(in: top).count == 5)
        try driver.put(LayerID("layer5"))
    }

    @Test("options: unknown keys, quotas without quota support and ID maps without a shifter are refused")
    func refusals() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        #expect(throws: StorageError.self) { try store.driver(["skip_mount_home=true", "frobnicate=1"]) }
        #expect { try store.driver(["skip_mount_home=true", "size=10G"]) } throws: { ($0 as! StorageError).code == .unsupported }
        let driver = try store.driver()
        let layer = try LayerID("rw")
        #expect { try driver.createReadWrite(layer, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 1 << 30))) }
            throws: { ($0 as! StorageError).code == .unsupported }
        #expect(!driver.exists(layer), "a refused create left a layer")
        #expect { try driver.create(layer, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 1 << 30))) }
            throws: { ($0 as! StorageError).code == .invalidArgument }
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        let mapped = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                                gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])
        #expect { try driver.get(layer, options: MountOptions(idMappings: mapped)) } throws: { ($0 as! StorageError).code == .unsupported }
        #expect { try driver.updateLayerIDMap(layer, toContainer: .identity, toHost: mapped, mountLabel: nil) }
            throws: { ($0 as! StorageError).code == .unsupported }
        #expect(store.mounts().isEmpty)
        #expect { try driver.create(LayerID("l"), parent: nil, options: CreateOptions()) } throws: { _ in true }
        let reserved = [try LayerID("l"), try LayerID("staging")]
        #expect(reserved.allSatisfy { !driver.exists($0) })
        let overlayHome = try driver.get(layer, options: MountOptions())
        defer { try? driver.put(layer) }
        #expect { try OverlayDriver(home: overlayHome.appending("nested"), runHome: store.root.appending("run2")) }
            throws: { ($0 as! StorageError).reason.contains("overlayfs") }
    }

    @Test("readWriteDiskUsage walks the layer's own files when there is no quota")
    func diskUsage() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layer = try LayerID("used")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        try driver.withMount(layer) { root in
            try Files.write("12345", at: "a", in: root)
            try Files.write("123", at: "dir/b", in: root)
            try FileManager.default.linkItem(atPath: root.appending("a").string, toPath: root.appending("hard").string)
        }
        let usage = try driver.readWriteDiskUsage(layer)
        #expect(usage.bytes - 4096 == 8, "bytes \(usage.bytes)")  // dir/ counts its own size
        #expect(usage.inodes == 4)  // the root, a (with its second name), dir, dir/b
    }

    @Test("extra mount options are applied")
    func mountOptions() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver(["skip_mount_home=true", "mountopt=nodev"])
        let layer = try LayerID("opts")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions())
        let merged = try driver.get(layer, options: MountOptions(extra: [try .flag("noexec"), try .value("redirect_dir", "nofollow")]))
        defer { try? driver.put(layer) }
        let entry = try #require(Mounts.mountTable().first { $0.mountPoint == merged.string })
        #expect(entry.fileSystemType == "overlay")
        #expect(entry.superOptions.contains("redirect_dir=nofollow"))
        let info = try FileDescriptor.open("/proc/self/mountinfo", .readOnly)
        let table = String(decoding: try info.readToEnd(), as: UTF8.self)
        try info.close()
        let line = try #require(table.split(separator: "\n").first { $0.contains(" \(merged.string) ") })
        #expect(line.contains("nodev") && line.contains("noexec"))
    }
}
