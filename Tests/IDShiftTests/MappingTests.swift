import GraphDriver
import SystemPackage
import Testing

@testable import IDShift

/// The arithmetic of mappings: parsing, both directions, several ranges, subordinate IDs,
/// overflow IDs, contiguity, the inverse and the root.
@Suite("Mappings")
struct MappingTests {
    @Test("container:host:size parses and maps both ways at the edges of the range")
    func parseAndMap() throws {
        let map = try IDMap(parsing: "0:100000:65536")
        #expect(map == IDMap(containerID: 0, hostID: 100_000, size: 65536))
        #expect(map.description == "0:100000:65536")
        #expect(map.toHost(0) == 100_000)
        #expect(map.toHost(65535) == 165_535)
        #expect(map.toHost(65536) == nil)
        #expect(map.toContainer(99_999) == nil)
        #expect(map.toContainer(100_000) == 0)
        #expect(map.toContainer(165_535) == 65535)
        #expect(map.toContainer(165_536) == nil)
        #expect(try IDMap(parsing: "4294967295:0:1").toHost(4_294_967_295) == 0)
    }

    @Test("malformed mappings are refused", arguments: ["", "1:2", "1:2:3:4", "a:1:1", "0:0:0", "-1:0:1",
                                                        "4294967295:0:2", "0:4294967295:2", "0:0:4294967296"])
    func malformed(text: String) {
        #expect(throws: StorageError.self) { try IDMap(parsing: text) }
    }

    @Test("several ranges: each ID goes through the range that holds it")
    func severalRanges() throws {
        let ranges = try IDMap.parseList("0:1000:1, 1:100000:65535")
        #expect(ranges == [IDMap(containerID: 0, hostID: 1000, size: 1), IDMap(containerID: 1, hostID: 100_000, size: 65535)])
        #expect(IDMappings.hostID(0, ranges) == 1000)
        #expect(IDMappings.hostID(1, ranges) == 100_000)
        #expect(IDMappings.hostID(65535, ranges) == 165_534)
        #expect(IDMappings.hostID(65536, ranges) == nil)
        #expect(IDMappings.containerID(1000, ranges) == 0)
        #expect(IDMappings.containerID(100_001, ranges) == 2)
        #expect(IDMappings.containerID(999, ranges) == nil)
        #expect(IDMappings.hostID(12345, []) == 12345)
        #expect(try IDMap.parseList("") == [])
    }

    @Test("overlapping ranges are refused on either side")
    func overlaps() throws {
        #expect(throws: StorageError.self) { try IDMap.parseList("0:100000:10,5:200000:10") }
        #expect(throws: StorageError.self) { try IDMap.parseList("0:100000:10,10:100005:10") }
        _ = try IDMap.parseList("0:100000:10,10:100010:10")
    }

    @Test("contiguity, inverse and root")
    func contiguityInverseRoot() throws {
        #expect(IDMap.isContiguous(try IDMap.parseList("1000:101000:1000,0:100000:1000")))
        #expect(!IDMap.isContiguous(try IDMap.parseList("0:100000:1000,1000:200000:10")))
        #expect(!IDMap.isContiguous(try IDMap.parseList("0:100000:1000,1001:101001:10")))
        #expect(IDMap.isContiguous([]))

        let mappings = IDMappings(uidMap: try IDMap.parseList("0:100000:65536"), gidMap: try IDMap.parseList("0:200000:5,5:300000:5"))
        #expect(mappings.inverted.uidMap == [IDMap(containerID: 100_000, hostID: 0, size: 65536)])
        let back = mappings.inverted.toHost(uid: 100_007, gid: 300_001)
        #expect(back?.uid == 7)
        #expect(back?.gid == 6)
        #expect(mappings.rootUID == 100_000)
        #expect(mappings.rootGID == 200_000)
        #expect(!mappings.isContiguous)
        #expect(IDMappings.identity.rootUID == 0)
        #expect(IDMappings(uidMap: try IDMap.parseList("1:100000:10")).rootUID == nil)
    }

    @Test("subordinate ranges are read from a subuid-style file, stacked from container ID 0")
    func subordinate() throws {
        let scratch = ScratchDirectory()
        let file = scratch.path + "/subuid"
        try sh("""
            printf '# users\\nalice:100000:65536\\nbob:165536:65536\\n\\nalice:300000:1000\\n1001:400000:5\\n' > \(file)
            printf 'alice:500000:10\\n' > \(scratch.path)/subgid
            """)
        let alice = try IDMap.subordinateRanges(forUser: "alice", file: FilePath(file))
        #expect(alice == [IDMap(containerID: 0, hostID: 100_000, size: 65536), IDMap(containerID: 65536, hostID: 300_000, size: 1000)])
        #expect(try IDMap.subordinateRanges(forUser: "carol", userID: 1001, file: FilePath(file))
                    == [IDMap(containerID: 0, hostID: 400_000, size: 5)])
        let both = try IDMappings.subordinate(forUser: "alice", uidFile: FilePath(file), gidFile: FilePath(scratch.path + "/subgid"))
        #expect(both.gidMap == [IDMap(containerID: 0, hostID: 500_000, size: 10)])
        #expect(both.uidMap == alice)

        do {
            _ = try IDMap.subordinateRanges(forUser: "dave", file: FilePath(file))
            Issue.record("no ranges should be an error")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.description.contains("dave"))
        }
        try sh("printf 'alice:12x:5\\n' > \(file)")
        do {
            _ = try IDMap.subordinateRanges(forUser: "alice", file: FilePath(file))
            Issue.record("a malformed line should be an error")
        } catch {
            #expect(error.code == .corrupt)
            #expect(error.description == "read subordinate IDs: \(file): line 1 ('alice:12x:5') is not name:start:count")
        }
        #expect(throws: StorageError.self) { try IDMap.subordinateRanges(forUser: "x", file: "/nonexistent/subuid") }
    }

    @Test("overflow IDs come from the kernel's files, 65534 when unreadable")
    func overflow() throws {
        let scratch = ScratchDirectory()
        try sh("printf '12345\\n' > \(scratch.path)/overflow")
        #expect(IDMap.overflowUserID(file: FilePath(scratch.path + "/overflow")) == 12345)
        #expect(IDMap.overflowGroupID(file: "/nonexistent") == 65534)
        let kernel = try sh("cat /proc/sys/kernel/overflowuid").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(IDMap.overflowUserID() == UInt32(kernel))
    }

    @Test("a shift's translation goes through the container ID and names the mapping that fails")
    func translation() {
        let from = mapping("0:100000:65536")
        let to = IDMappings(uidMap: try! IDMap.parseList("0:200000:1000"), gidMap: try! IDMap.parseList("0:300000:65536"))
        let t = OwnerTranslation(from: from, to: to, options: ShiftOptions(overflowUID: 65534, overflowGID: 65533))
        #expect(t.translate(100_000, group: false) == .success(200_000))
        #expect(t.translate(100_999, group: false) == .success(200_999))
        #expect(t.translate(101_000, group: false) == .failure(.notInTarget(containerID: 1000, group: false)))
        #expect(t.translate(101_000, group: true) == .success(301_000))
        #expect(t.translate(99_999, group: true) == .failure(.notInSource(id: 99_999, group: true)))
        #expect(t.explain(.notInSource(id: 99_999, group: true), what: "group")
                    == "group gid 99999 is outside the current gid mapping 0:100000:65536")
        #expect(t.explain(.notInTarget(containerID: 1000, group: false), what: "owner")
                    == "owner container uid 1000 has no host ID in the new uid mapping 0:200000:1000")
        #expect(t.overflow(group: false) == nil)
        let lenient = OwnerTranslation(from: from, to: to, options: ShiftOptions(unmappedIDs: .useOverflowID, overflowUID: 65534, overflowGID: 65533))
        #expect(lenient.overflow(group: true) == 65533)

        // From and to the identity.
        let up = OwnerTranslation(from: .identity, to: from, options: ShiftOptions())
        #expect(up.translate(0, group: false) == .success(100_000))
        #expect(up.translate(70000, group: false) == .failure(.notInTarget(containerID: 70000, group: false)))
        let down = OwnerTranslation(from: from, to: .identity, options: ShiftOptions())
        #expect(down.translate(100_033, group: true) == .success(33))
    }

    @Test("override_stat keeps everything after the IDs byte for byte")
    func overrideStat() {
        var stat = OverrideStat(Array("100005:100006:0100644:file".utf8))!
        #expect(stat.uid == 100_005 && stat.gid == 100_006 && stat.rest == "0100644:file")
        stat.uid = 7
        #expect(String(decoding: stat.bytes, as: UTF8.self) == "7:100006:0100644:file")
        #expect(OverrideStat(Array("0:0:0755".utf8))?.rest == "0755")
        #expect(OverrideStat(Array("x:0:0755".utf8)) == nil)
        #expect(OverrideStat(Array("0:0".utf8)) == nil)
    }

    @Test("a v3 capability's root ID is read and rewritten in bytes 20 to 23")
    func capabilityRootID() {
        var v3: [UInt8] = [0x01, 0, 0, 0x03] + [UInt8](repeating: 0, count: 16) + [0xA0, 0x86, 0x01, 0x00]  // 100000
        #expect(FileCapability.rootID(v3) == 100_000)
        let mapped = FileCapability.mappingRootID(v3) { $0 + 100_000 }!
        #expect(Array(mapped[20...]) == [0x40, 0x0D, 0x03, 0x00])  // 200000
        #expect(Array(mapped[..<20]) == Array(v3[..<20]))
        v3[3] = 0x02
        let v2 = Array(v3[..<20])
        #expect(FileCapability.rootID(v2) == nil)
        let promoted = FileCapability.asRevision3(v2, rootID: 100_000)!
        #expect(promoted == [0x01, 0, 0, 0x03] + [UInt8](repeating: 0, count: 16) + [0xA0, 0x86, 0x01, 0x00])
        #expect(FileCapability.asRevision2(promoted) == v2)
        #expect(FileCapability.asRevision3(promoted, rootID: 1) == nil)
    }
}
