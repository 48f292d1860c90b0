// IDShiftExample: shifts a small tree from one ID mapping to another and shows what changed.
//
//   swift run IDShiftExample                 # as root
//   swift run -c release IDShiftExample --time TREE FROM TO [THREADS]
//       times a shift of an existing TREE (FROM and TO as `c:h:n[,c:h:n…]`, used for both uid
//       and gid; `-` for the identity)
//   swift run -c release IDShiftExample --time-mount SOURCE TARGET MAP
//       times making an idmapped mount of SOURCE at TARGET (left mounted)
import GraphDriver
import IDShift
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

guard geteuid() == 0 else {
    print("IDShiftExample changes file owners, capabilities and ACLs: it needs root (CAP_CHOWN, CAP_FOWNER, CAP_SETFCAP).")
    print("Run it as root, e.g. `sudo swift run IDShiftExample`.")
    exit(1)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func mapping(_ text: String) throws(StorageError) -> IDMappings {
    let ranges = text == "-" ? [] : try IDMap.parseList(text)
    return IDMappings(uidMap: ranges, gidMap: ranges)
}

let arguments = CommandLine.arguments
if arguments.count == 5 && arguments[1] == "--time-mount" {
    do throws(StorageError) {
        let map = try mapping(arguments[4])
        let start = ContinuousClock.now
        try IdmappedMount.makeIdmappedMount(source: FilePath(arguments[2]), target: FilePath(arguments[3]), mappings: map)
        print("idmapped mount in \(seconds(ContinuousClock.now - start) * 1000) ms")
    } catch {
        print("IDShiftExample: \(error)")
        exit(1)
    }
    exit(0)
}
if (arguments.count == 5 || arguments.count == 6) && arguments[1] == "--time" {
    let threads = arguments.count == 6 ? Int(arguments[5]) ?? 2 : 2
    do throws(StorageError) {
        let report = try ChownShifter(options: ShiftOptions(threads: threads)).shift(
            tree: FilePath(arguments[2]), from: try mapping(arguments[3]), to: try mapping(arguments[4]))
        let time = seconds(report.duration)
        print(report)
        print("seconds \(time) entries/s \(Int(Double(report.entriesVisited) / time))")
    } catch {
        print("IDShiftExample: \(error)")
        exit(1)
    }
    exit(0)
}

/// Makes the demonstration tree under `root` with container-side owners of the old mapping.
func makeTree(_ root: FileDescriptor, host: (UInt32) -> UInt32) throws(Errno) {
    func file(_ name: String, mode: CModeT, uid: UInt32, gid: UInt32) throws(Errno) {
        let fd = try root.open(at: FilePath(name), .writeOnly, options: [.create, .exclusiveCreate],
                               permissions: FilePermissions(rawValue: 0o644))
        fd.closeQuietly()
        try root.changeOwner(at: FilePath(name), user: UserID(rawValue: host(uid)), group: GroupID(rawValue: host(gid)))
        try root.changeMode(at: FilePath(name), permissions: FilePermissions(rawValue: mode))
    }
    try root.changeOwner(at: ".", user: UserID(rawValue: host(0)), group: GroupID(rawValue: host(0)))
    try file("passwd", mode: 0o644, uid: 0, gid: 0)
    try file("sudo", mode: 0o4755, uid: 0, gid: 0)
    try file("ping", mode: 0o755, uid: 0, gid: 0)
    try file("notes", mode: 0o640, uid: 1000, gid: 1000)
    try root.makeDirectory(at: "shared")
    try root.changeOwner(at: "shared", user: UserID(rawValue: host(1000)), group: GroupID(rawValue: host(100)))
    try root.makeSymbolicLink(at: "link", target: "/etc/hostname")
    try root.changeOwner(at: "link", user: UserID(rawValue: host(33)), group: GroupID(rawValue: host(33)))
    try root.makeHardLink(from: "notes", to: "notes.hardlink")

    // A v3 capability (cap_net_raw+ep) that belongs to the container's root.
    var capability: [UInt8] = [0x01, 0x00, 0x00, 0x03]  // revision 3, effective
    capability += [0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]  // permitted: CAP_NET_RAW (13)
    capability += [UInt8](repeating: 0, count: 8)
    let rootID = host(0)
    capability += [UInt8(rootID & 0xFF), UInt8(rootID >> 8 & 0xFF), UInt8(rootID >> 16 & 0xFF), UInt8(rootID >> 24)]
    try root.setExtendedAttribute("security.capability", capability, at: "ping")

    // An ACL naming a user and a group of the container.
    let acl = PosixACL(entries: [
        .init(tag: .userObject, permissions: 6, id: PosixACL.undefinedID),
        .init(tag: .user, permissions: 6, id: host(1001)),
        .init(tag: .groupObject, permissions: 4, id: PosixACL.undefinedID),
        .init(tag: .group, permissions: 4, id: host(100)),
        .init(tag: .mask, permissions: 6, id: PosixACL.undefinedID),
        .init(tag: .other, permissions: 0, id: PosixACL.undefinedID),
    ])
    try root.setExtendedAttribute("system.posix_acl_access", acl.encoded(), at: "notes")
    try root.setExtendedAttribute("system.posix_acl_default", acl.encoded(), at: "shared")
}

/// Prints each name's owner, mode, ACL entries and capability.
func show(_ root: FileDescriptor, _ title: String) throws(Errno) {
    print("\n\(title)")
    let names = ["."] + (try root.directoryEntries().map(\.name).sorted())
    for name in names {
        let status = try root.status(at: FilePath(name))
        let mode = String(status.mode & 0o7777, radix: 8)
        var line = "  \(name.padding(16)) \(String(status.userID.rawValue).padding(7)):\(String(status.groupID.rawValue).padding(7)) \(mode.padding(5))"
        if status.kind != .symlink {
            for attribute in ["system.posix_acl_access", "system.posix_acl_default"] {
                if let bytes = try root.extendedAttribute(attribute, at: FilePath(name)), let acl = PosixACL(decoding: bytes) {
                    let named = acl.entries.filter { $0.tag == .user || $0.tag == .group }
                        .map { "\($0.tag == .user ? "u" : "g"):\($0.id)" }
                    line += " \(attribute.hasSuffix("default") ? "default-acl" : "acl")[\(named.joined(separator: ","))]"
                }
            }
            if let cap = try root.extendedAttribute("security.capability", at: FilePath(name)) {
                line += FileCapability.rootID(cap).map { " cap v3 rootid=\($0)" } ?? " cap v2"
            }
        } else {
            line += " -> \(try root.readSymbolicLink(at: FilePath(name)))"
        }
        print(line)
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

let old = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)],
                     gidMap: [IDMap(containerID: 0, hostID: 100_000, size: 65536)])
let new = IDMappings(uidMap: [IDMap(containerID: 0, hostID: 200_000, size: 65536)],
                     gidMap: [IDMap(containerID: 0, hostID: 200_000, size: 65536)])

var template = Array("/tmp/idshift-example-XXXXXX".utf8CString)
guard let made = mkdtemp(&template) else {
    print("IDShiftExample: cannot make a temporary directory")
    exit(1)
}
let path = FilePath(String(cString: made))
do {
    let root = try FileDescriptor.openDirectory(path)
    defer {
        try? root.removeContents()
        root.closeQuietly()
        _ = rmdir(path.string)
    }
    try makeTree(root) { IDMappings.hostID($0, old.uidMap)! }
    print("Tree \(path), shifted from \(old.uidMap[0]) to \(new.uidMap[0]) (uid and gid)")
    try show(root, "Before:")
    let report = try ChownShifter().shift(tree: path, from: old, to: new)
    try show(root, "After:")
    print("\n\(report)")
    print("Idmapped mounts on this filesystem: \(IdmappedMount.supportsIdmappedMounts(at: path) ? "yes" : "no")")
} catch {
    print("IDShiftExample: \(error)")
    exit(1)
}
