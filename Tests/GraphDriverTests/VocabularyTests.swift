import GraphDriver
import SystemPackage
import Testing

@Suite struct LayerIDTests {
    @Test(arguments: ["a", "abc", "A1_b.c-d", "0", String(repeating: "x", count: 255)])
    func valid(_ text: String) throws {
        #expect(try LayerID(text).rawValue == text)
    }

    @Test(arguments: ["", "-a", "_a", ".a", "a/b", "a b", "../x", "a:b", String(repeating: "x", count: 256), "é"])
    func invalid(_ text: String) {
        #expect { try LayerID(text) } throws: { ($0 as! StorageError).code == .invalidArgument }
    }
}

@Suite struct DriverOptionsTests {
    @Test func parsesEveryKey() throws {
        let options = try DriverOptions(parsing: [
            "mountopt=nodev,metacopy=on", "overlay.size=10G", "inodes=1000", "force_mask=shared",
            "skip_mount_home=true", "ignore_chown_errors=1", "imagestore=/images",
            "additionalimagestore=/a,/b", "additionallayerstore=/als:ref", "overlay2.additionallayerstore=/plain",
        ])
        #expect(options.mountOptions.map(\.description) == ["nodev", "metacopy=on"])
        #expect(options.quota == QuotaLimits(size: 10 << 30, inodes: 1000))
        #expect(options.forceMask == FilePermissions(rawValue: 0o755))
        #expect(options.skipMountHome && options.ignoreChownErrors)
        #expect(options.imageStore == "/images")
        #expect(options.additionalImageStores == ["/a", "/b"])
        #expect(options.additionalLayerStores == [
            AdditionalLayerStoreLocation(path: "/als", withReference: true),
            AdditionalLayerStoreLocation(path: "/plain", withReference: false),
        ])
        #expect(try DriverOptions(parsing: ["force_mask=private"]).forceMask == FilePermissions(rawValue: 0o700))
        #expect(try DriverOptions(parsing: ["force_mask=0750"]).forceMask == FilePermissions(rawValue: 0o750))
    }

    @Test(arguments: ["unknown=1", "size", "size=lots", "inodes=-1", "force_mask=rwx", "skip_mount_home=maybe",
                      "imagestore=relative", "mountopt=a=b=c,x\n", "=1"])
    func refuses(_ option: String) {
        #expect(throws: StorageError.self) { try DriverOptions(parsing: [option]) }
    }

    @Test func sizes() throws {
        #expect(try QuotaLimits.parseSize("512") == 512)
        #expect(try QuotaLimits.parseSize("4k") == 4096)
        #expect(try QuotaLimits.parseSize("10GB") == 10 << 30)
        #expect(try QuotaLimits.parseSize("1TiB") == 1 << 40)
        #expect(throws: StorageError.self) { try QuotaLimits.parseSize("99999999999999999999P") }
    }

    @Test func createOptions() throws {
        let options = try CreateOptions(storageOptions: ["size=1G", "inodes=10"])
        #expect(options.quota == QuotaLimits(size: 1 << 30, inodes: 10))
        #expect(throws: StorageError.self) { try CreateOptions(storageOptions: ["mountopt=nodev"]) }
    }
}

@Suite struct MountOptionTests {
    @Test func parsing() throws {
        #expect(try MountOption(parsing: "nodev") == .flag("nodev"))
        #expect(try MountOption(parsing: "redirect_dir=off") == .value("redirect_dir", "off"))
        #expect(throws: StorageError.self) { try MountOption.flag("a,b") }
        #expect(throws: StorageError.self) { try MountOption.flag("") }
        #expect(try SELinuxContext("system_u:object_r:container_file_t:s0:c1,c2").rawValue.hasPrefix("system_u"))
        #expect(throws: StorageError.self) { try SELinuxContext("nonsense") }
        #expect(throws: StorageError.self) { try SELinuxContext("a:b:c\",x") }
    }
}

@Suite struct NullCapabilityTests {
    @Test func nullImplementationsSayUnsupported() throws {
        #expect(!NoQuota().isSupported)
        try NoQuota().setLimits(.none, on: "/x")
        #expect { try NoQuota().setLimits(QuotaLimits(size: 1), on: "/x") } throws: { ($0 as! StorageError).code == .unsupported }
        #expect(try NoQuota().usage(of: "/x") == nil)
        #expect(!NoMountLabels().isEnabled)
        #expect(try NoMountLabels().mountOption(for: SELinuxContext("u:r:t:s0")) == nil)
        #expect { try NoMountLabels().relabel("/x", label: SELinuxContext("u:r:t"), shared: true) }
            throws: { ($0 as! StorageError).code == .unsupported }
        let mapped = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 1000, size: 1)], gidMap: [])
        try NoShifting().shift("/x", from: .identity, to: .identity, ignoreChownErrors: false)
        #expect { try NoShifting().shift("/x", from: .identity, to: mapped, ignoreChownErrors: false) }
            throws: { ($0 as! StorageError).code == .unsupported }
        #expect(!NoShifting().supportsIdmappedMounts(mapped))
    }
}

@Suite("Quoted mount options")
struct QuotedMountOptionTests {
    @Test("a quoted value may hold commas; quotes inside are refused")
    func quoted() throws {
        let option = try MountOption.quoted("context", "system_u:object_r:container_file_t:s0:c1,c2")
        #expect(option.description == "context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
        #expect(throws: StorageError.self) { try MountOption.quoted("context", "a\"b") }
        #expect(throws: StorageError.self) { try MountOption.value("context", "a,b") }
        #expect(try MountOption(parsing: "context=\"a:b:c:s0:c1,c2\"").value == "\"a:b:c:s0:c1,c2\"")
    }
}

/// User input that must be refused with a reason (issue 10's input validation).
@Suite struct InputValidationTests {
    private func reason(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let error as StorageError { return error.description } catch { return "\(error)" }
    }

    @Test("mount options cannot replace the layer directories the driver sets")
    func driverOwnedMountOptions() throws {
        for name in ["upperdir", "lowerdir", "workdir", "lowerdir+", "datadir+"] {
            let message = reason { _ = try MountOption(parsing: "\(name)=/etc") }
            #expect(message?.contains("set by the driver") == true, "\(name): \(message ?? "accepted")")
        }
        #expect(reason { _ = try DriverOptions(parsing: ["mountopt=nodev,upperdir=/etc"]) } != nil)
        #expect(try MountOption.parseList("nodev,metacopy=on").count == 2)
    }

    @Test("ID mappings: empty, overflowing and overlapping ranges are refused with a reason")
    func mappings() throws {
        for text in ["0:100000:0", "0:4294967295:2", "4294967295:0:2", "0:1", "a:b:c", "0:1:2:3", "-1:0:1", ""] {
            let message = reason { _ = try IDMap(parsing: text) }
            #expect(message != nil && !message!.isEmpty, "'\(text)' accepted")
        }
        #expect(reason { _ = try IDMap.parseList("0:1000:10,5:2000:10") }?.contains("share") == true)
    }

    @Test("sizes, layer IDs and labels are refused with a reason")
    func scalars() throws {
        for text in ["", "10Q", "-5", "99999999999999999999G", "1.5.5G", "G"] {
            #expect(reason { _ = try QuotaLimits.parseSize(text) } != nil, "size '\(text)' accepted")
        }
        for text in ["", ".", "..", "../x", "a/b", "-a", "a b", "a\0b", String(repeating: "a", count: 300)] {
            #expect(reason { _ = try LayerID(text) } != nil, "layer ID '\(text)' accepted")
        }
        for text in ["", "a:b", "a:b:c d", "a::c"] {
            #expect(reason { _ = try SELinuxContext(text) } != nil, "label '\(text)' accepted")
        }
    }
}
