import Foundation
import GraphDriver
import MountLabel
import Overlay
import StrataSystem
import SystemPackage
import TestTiers
import Testing

/// The driver with the SELinux labeler: a label reaches the overlay mount as `context=`, by
/// `mount(2)` data and by `fsconfig(2)`, categories (with their comma) included.
@Suite("Overlay labels (kernel tier)", .serialized, .kernelTier(.selinux))
struct OverlayLabelKernelTierTests {
    @Test("a label the loaded policy does not define is refused before mount(2), naming the invalid part")
    func undefinedLabel() throws {
        let root = "/tmp/strata-badlabel-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Mounts.mount(source: "tmpfs", target: FilePath(root), type: "tmpfs")
        defer {
            for entry in Mounts.mountTable().reversed() where entry.mountPoint.hasPrefix(root + "/") {
                try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
            }
            try? Mounts.unmount(FilePath(root), flags: .detach)
            try? FileManager.default.removeItem(atPath: root)
        }
        let driver = try OverlayDriver(home: FilePath(root + "/home"), runHome: FilePath(root + "/run"),
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                       labeler: SELinuxLabeler())
        let image = try LayerID("image"), container = try LayerID("container")
        try driver.create(image, parent: nil, options: CreateOptions())
        try driver.createReadWrite(container, parent: image, options: CreateOptions())
        // The guest's policy defines categories c0-c3 and c1023, not c5.
        for (label, part) in [("system_u:object_r:container_file_t:s0:c5", "its level 's0:c5' is not valid (its user, role and type are)"),
                              ("nobody_u:object_r:container_file_t:s0", "its user 'nobody_u' is not valid"),
                              ("system_u:object_r:strata_no_such_type_t:s0:c5", "its type 'strata_no_such_type_t' and level 's0:c5' are not valid")] {
            #expect {
                try driver.get(container, options: MountOptions(label: SELinuxContext(label)))
            } throws: { error in
                let e = error as! StorageError
                return e.code == .invalidArgument && e.reason.contains(part) && e.errno == nil
            }
            #expect(!Mounts.mountTable().contains { $0.mountPoint == root + "/home/container/merged" }, "\(label) was mounted")
        }
        // A relabel of a new layer is checked the same way.
        #expect {
            try driver.create(LayerID("labeled"), parent: image,
                              options: CreateOptions(mountLabel: SELinuxContext("system_u:object_r:container_file_t:s0:c5")))
        } throws: { ($0 as! StorageError).reason.contains("its level 's0:c5' is not valid") }
        #expect(!driver.exists(try LayerID("labeled")))
    }

    @Test("files of a layer mounted with a label show that label", arguments: [1, 100])
    func labeledMount(depth: Int) throws {
        // The store lives on a tmpfs: the guest's root is an overlay, which cannot be an upper.
        let root = "/tmp/strata-label-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Mounts.mount(source: "tmpfs", target: FilePath(root), type: "tmpfs")
        defer {
            for entry in Mounts.mountTable().reversed() where entry.mountPoint.hasPrefix(root + "/") {
                try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
            }
            try? Mounts.unmount(FilePath(root), flags: .detach)
            try? FileManager.default.removeItem(atPath: root)
        }
        let driver = try OverlayDriver(home: FilePath(root + "/home"), runHome: FilePath(root + "/run"),
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                       labeler: SELinuxLabeler())
        var parent: LayerID?
        for i in 0..<depth {
            let id = try LayerID("layer\(i)")
            try driver.create(id, parent: parent, options: CreateOptions())
            FileManager.default.createFile(atPath: root + "/home/layer\(i)/diff/file\(i)", contents: Data("x".utf8))
            parent = id
        }
        let container = try LayerID("container")
        try driver.createReadWrite(container, parent: parent, options: CreateOptions())
        let label = try SELinuxContext("system_u:object_r:container_file_t:s0:c1,c2")
        let merged = try driver.get(container, options: MountOptions(label: label))
        defer { try? driver.put(container) }
        let entry = try #require(Mounts.mountTable().first { $0.mountPoint == merged.string })
        #expect(entry.superOptions.contains("context="))
        let fd = try FileDescriptor.openDirectory(merged)
        defer { fd.closeQuietly() }
        for name in ["file0", "file\(depth - 1)"] {
            let raw = try #require(try fd.extendedAttribute("security.selinux", at: FilePath(name)))
            #expect(String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) == label.rawValue)
        }
    }
}
