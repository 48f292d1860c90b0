import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("mkdirat, fstatat, fchownat, fchmodat, utimensat, mknodat")
struct MetadataTests {
    @Test func mkdiratMakesDirectoriesWithTheirMode() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "a", permissions: .init(rawValue: 0o750))
        try dir.descriptor.makeDirectory(at: "a/b")
        #expect(try dir.descriptor.status(at: "a").kind == .directory)
        #expect(try dir.descriptor.status(at: "a").permissions.rawValue == 0o750)
        #expect(try dir.descriptor.status(at: "a/b").permissions.rawValue == 0o755)
        expectErrno(.fileExists) { try dir.descriptor.makeDirectory(at: "a") }
        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.makeDirectory(at: "missing/child") }
    }

    @Test(needsRoot) func fstatatReportsEveryKind() throws {
        let dir = try TemporaryDirectory()
        let d = dir.descriptor
        try dir.write("file", "12345678")
        try d.makeDirectory(at: "dir")
        try d.makeSymbolicLink(at: "link", target: "file")
        try d.makeNode(at: "fifo", kind: .fifo, permissions: .init(rawValue: 0o644))
        try d.makeNode(at: "char", kind: .characterDevice, permissions: .init(rawValue: 0o600),
                       device: makeDeviceNumber(major: 1, minor: 3))
        try d.makeNode(at: "block", kind: .blockDevice, permissions: .init(rawValue: 0o640),
                       device: makeDeviceNumber(major: 7, minor: 200))
        try d.makeNode(at: "socket", kind: .socket, permissions: .init(rawValue: 0o755))

        #expect(try d.status(at: "file").kind == .regular)
        #expect(try d.status(at: "file").size == 8)
        #expect(try d.status(at: "dir").kind == .directory)
        #expect(try d.status(at: "link").kind == .symlink)
        #expect(try d.status(at: "link").size == 4)  // a symlink's size is its target's length
        #expect(try d.status(at: "link", followSymlinks: true).kind == .regular)
        #expect(try d.status(at: "link", followSymlinks: true).inode == d.status(at: "file").inode)
        #expect(try d.status(at: "fifo").kind == .fifo)
        #expect(try d.status(at: "socket").kind == .socket)
        let char = try d.status(at: "char")
        #expect(char.kind == .characterDevice)
        #expect(char.deviceMajor == 1 && char.deviceMinor == 3)
        #expect(char.permissions.rawValue == 0o600)
        let block = try d.status(at: "block")
        #expect(block.kind == .blockDevice)
        #expect(block.deviceMajor == 7 && block.deviceMinor == 200)
        #expect(block.permissions.rawValue == 0o640)
        #expect(try d.status(at: "file").linkCount == 1)
        #expect(try d.status(at: "dir").linkCount == 2)
        expectErrno(.noSuchFileOrDirectory) { try d.status(at: "nothing") }
        // The device the directory lives on is the one /tmp is on.
        var st = stat()
        #expect(stat("/tmp", &st) == 0)
        #expect(try d.status(at: "file").device == UInt64(st.st_dev))
    }

    @Test func deviceNumbersRoundTripLargeValues() {
        // Majors above 255 and minors above 255 use the split encoding of dev_t.
        let number = makeDeviceNumber(major: 259, minor: 1_048_575)
        // glibc's encoding: minor's low byte, major's 12 bits, then minor's upper bits from bit 20.
        #expect(number == 0xFFF1_03FF)
        var status = FileStatus(stat())
        status.specialDevice = number
        #expect(status.deviceMajor == 259)
        #expect(status.deviceMinor == 1_048_575)
        #expect(makeDeviceNumber(major: 0, minor: 0) == 0)
    }

    @Test(needsRoot) func fchownatChangesASymlinkItself() throws {
        let dir = try TemporaryDirectory()
        try dir.write("target", "t")
        try dir.descriptor.makeSymbolicLink(at: "link", target: "target")
        try dir.descriptor.changeOwner(at: "link", user: UserID(rawValue: 1234), group: GroupID(rawValue: 5678))
        let link = try dir.descriptor.status(at: "link")
        let target = try dir.descriptor.status(at: "target")
        #expect(link.userID.rawValue == 1234 && link.groupID.rawValue == 5678)
        #expect(target.userID.rawValue == 0 && target.groupID.rawValue == 0)

        // Following the link changes the target; nil leaves a field alone.
        try dir.descriptor.changeOwner(at: "link", user: UserID(rawValue: 42), group: nil, followSymlinks: true)
        let after = try dir.descriptor.status(at: "target")
        #expect(after.userID.rawValue == 42 && after.groupID.rawValue == 0)
        #expect(try dir.descriptor.status(at: "link").userID.rawValue == 1234)

        // fchown on an open descriptor.
        let fd = try dir.descriptor.open(at: "target", .readOnly)
        try fd.changeOwner(user: nil, group: GroupID(rawValue: 77))
        fd.closeQuietly()
        let last = try dir.descriptor.status(at: "target")
        #expect(last.userID.rawValue == 42 && last.groupID.rawValue == 77)
    }

    @Test(needsRoot) func fchmodatSetsSpecialBits() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        try dir.descriptor.changeMode(at: "file", permissions: .init(rawValue: 0o4751))
        #expect(try dir.descriptor.status(at: "file").permissions.rawValue == 0o4751)
        try dir.descriptor.makeDirectory(at: "shared")
        try dir.descriptor.changeMode(at: "shared", permissions: .init(rawValue: 0o3777))
        #expect(try dir.descriptor.status(at: "shared").permissions.rawValue == 0o3777)
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        try fd.changeMode(permissions: .init(rawValue: 0o2640))
        fd.closeQuietly()
        #expect(try dir.descriptor.status(at: "file").permissions.rawValue == 0o2640)
        expectErrno(.noSuchFileOrDirectory) {
            try dir.descriptor.changeMode(at: "nothing", permissions: .init(rawValue: 0o644))
        }
    }

    @Test func utimensatSetsNanosecondTimes() throws {
        let dir = try TemporaryDirectory()
        try dir.write("file", "x")
        let atime = FileTime(seconds: 1_234_567_890, nanoseconds: 123_456_789)
        let mtime = FileTime(seconds: 987_654_321, nanoseconds: 987_654_321)
        try dir.descriptor.setTimes(at: "file", access: atime, modification: mtime)
        var status = try dir.descriptor.status(at: "file")
        #expect(status.accessTime == atime)
        #expect(status.modificationTime == mtime)

        // UTIME_OMIT leaves a time as it is.
        let later = FileTime(seconds: 1_700_000_000, nanoseconds: 1)
        try dir.descriptor.setTimes(at: "file", access: .omit, modification: later)
        status = try dir.descriptor.status(at: "file")
        #expect(status.accessTime == atime)
        #expect(status.modificationTime == later)

        // On a symlink, the link's own times change and the target's stay.
        try dir.descriptor.makeSymbolicLink(at: "link", target: "file")
        let linkTime = FileTime(seconds: 1_000_000_000, nanoseconds: 500)
        try dir.descriptor.setTimes(at: "link", access: linkTime, modification: linkTime)
        #expect(try dir.descriptor.status(at: "link").modificationTime == linkTime)
        #expect(try dir.descriptor.status(at: "file").modificationTime == later)

        // futimens on a descriptor; times before 1970 work too.
        let fd = try dir.descriptor.open(at: "file", .readOnly)
        let old = FileTime(seconds: -86_400, nanoseconds: 999_999_999)
        try fd.setTimes(access: old, modification: old)
        #expect(try fd.status().modificationTime == old)
        fd.closeQuietly()
        #expect(old < later && !(later < old))
    }

    @Test(needsRoot) func mknodatMakesFifosWhiteoutsAndDevices() throws {
        let dir = try TemporaryDirectory()
        let d = dir.descriptor
        try d.makeNode(at: "fifo", kind: .fifo, permissions: .init(rawValue: 0o640))
        try d.makeNode(at: "whiteout", kind: .characterDevice, permissions: .init(rawValue: 0))
        try d.makeNode(at: "loop", kind: .blockDevice, permissions: .init(rawValue: 0o640),
                       device: makeDeviceNumber(major: 7, minor: 0))
        let fifo = try d.status(at: "fifo")
        #expect(fifo.kind == .fifo && fifo.permissions.rawValue == 0o640)
        let whiteout = try d.status(at: "whiteout")
        #expect(whiteout.kind == .characterDevice)
        #expect(whiteout.specialDevice == 0 && whiteout.deviceMajor == 0 && whiteout.deviceMinor == 0)
        #expect(whiteout.permissions.rawValue == 0)
        let loop = try d.status(at: "loop")
        #expect(loop.kind == .blockDevice && loop.deviceMajor == 7 && loop.deviceMinor == 0)
        expectErrno(.fileExists) {
            try d.makeNode(at: "fifo", kind: .fifo, permissions: .init(rawValue: 0o644))
        }
    }

    @Test func fileKindsMapModesAndDirectoryTypes() {
        let kinds: [FileKind] = [.regular, .directory, .symlink, .characterDevice, .blockDevice, .fifo, .socket]
        for kind in kinds {
            #expect(FileKind(mode: kind.modeBits | 0o644) == kind)
        }
        #expect(FileKind(mode: 0) == .unknown)
        #expect(FileKind.unknown.modeBits == 0)
        #expect(FileKind(directoryEntryType: UInt8(DT_REG)) == .regular)
        #expect(FileKind(directoryEntryType: UInt8(DT_DIR)) == .directory)
        #expect(FileKind(directoryEntryType: UInt8(DT_LNK)) == .symlink)
        #expect(FileKind(directoryEntryType: UInt8(DT_CHR)) == .characterDevice)
        #expect(FileKind(directoryEntryType: UInt8(DT_BLK)) == .blockDevice)
        #expect(FileKind(directoryEntryType: UInt8(DT_FIFO)) == .fifo)
        #expect(FileKind(directoryEntryType: UInt8(DT_SOCK)) == .socket)
        #expect(FileKind(directoryEntryType: UInt8(DT_UNKNOWN)) == .unknown)
        #expect(FileKind.symlink.description == "symbolic link")
    }
}
