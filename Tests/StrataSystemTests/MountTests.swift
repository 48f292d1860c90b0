import Foundation
@testable import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("statfs, mount, umount2, the mount table, the new mount API", needsRoot)
struct MountTests {
    @Test func statfsNamesExt4AndTmpfs() throws {
        let dir = try TemporaryDirectory()
        // This machine's /tmp lives on ext4 (the root filesystem).
        let tmp = try FileSystemStatus.of("/tmp")
        #expect(tmp.type == .ext4)
        #expect(tmp.type.description == "extfs")
        #expect(try dir.descriptor.fileSystemStatus().type == .ext4)

        try dir.descriptor.makeDirectory(at: "mnt")
        try Mounts.mount(source: "strata-statfs", target: dir.path("mnt"), type: "tmpfs", data: "size=1m,nr_inodes=100")
        defer { try? Mounts.unmount(dir.path("mnt"), flags: .detach) }
        let status = try FileSystemStatus.of(dir.path("mnt"))
        #expect(status.type == .tmpfs)
        #expect(status.type.description == "tmpfs")
        #expect(UInt64(status.blockSize) * status.totalBlocks == 1_048_576)
        #expect(status.totalInodes == 100)
        #expect(status.freeInodes == 99)  // the root directory takes one
        let fd = try dir.descriptor.openDirectory(at: "mnt")
        #expect(try fd.fileSystemStatus().type == .tmpfs)
        fd.closeQuietly()
        #expect(FileSystemType(rawValue: 0x1234).description == "<unknown 0x1234>")

        expectErrno(.noSuchFileOrDirectory) { try FileSystemStatus.of(dir.path("none")) }
    }

    @Test func mountTmpfsAndUnmount() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "mnt")
        let target = dir.path("mnt")
        #expect(!Mounts.isMountPoint(target))
        try Mounts.mount(source: "strata-tmpfs-source", target: target, type: "tmpfs",
                         flags: [.noSetuid, .noDevices], data: "mode=0710")
        var mounted = true
        defer { if mounted { try? Mounts.unmount(target, flags: .detach) } }

        #expect(Mounts.isMountPoint(target))
        let entry = try #require(Mounts.mountTable().last { $0.mountPoint == target.string })
        #expect(entry.fileSystemType == "tmpfs")
        #expect(entry.source == "strata-tmpfs-source")
        #expect(entry.mountID > 0)
        #expect(try dir.descriptor.status(at: "mnt").permissions.rawValue == 0o710)
        try dir.write("mnt/on-tmpfs", "t")

        // Unmounting takes the tmpfs, and the file on it, away; a second unmount finds no mount.
        try Mounts.unmount(target)
        mounted = false
        #expect(!Mounts.isMountPoint(target))
        #expect(!dir.descriptor.exists(at: "mnt/on-tmpfs"))
        expectErrno(.invalidArgument) { try Mounts.unmount(target) }
        expectErrno(.operationNotSupportedByDevice) {
            try Mounts.mount(source: "x", target: target, type: "no-such-filesystem-type")
        }
    }

    @Test func bindMountShowsTheSameFiles() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "source")
        try dir.descriptor.makeDirectory(at: "with space")
        try dir.write("source/file", "bound")
        let target = dir.path("with space")
        try Mounts.mount(source: dir.path("source").string, target: target, type: nil, flags: .bind)
        var mounted = true
        defer { if mounted { try? Mounts.unmount(target, flags: .detach) } }

        #expect(try dir.read("with space/file") == "bound")
        // mountinfo escapes the space as \040; the table gives it back.
        #expect(Mounts.isMountPoint(target))
        #expect(Mounts.isMountPoint(FilePath(target.string + "/")))
        #expect(Mounts.mountTable().contains { $0.mountPoint == target.string })
        // Same device, yet a mount point: the table, not st_dev, says so.
        #expect(try dir.descriptor.status(at: "with space").device == dir.descriptor.status(at: "source").device)
        // One statx gives the status and the mount-root attribute.
        let bound = try dir.descriptor.statusAndMountRoot(at: "with space")
        #expect(bound.isMountRoot == true)
        #expect(bound.status == (try dir.descriptor.status(at: "with space")))
        let source = try dir.descriptor.statusAndMountRoot(at: "source/file")
        #expect(source.isMountRoot == false)
        #expect(source.status == (try dir.descriptor.status(at: "source/file")))
        expectErrno(.noSuchFileOrDirectory) { try dir.descriptor.statusAndMountRoot(at: "none") }

        // Read-only remount of the bind.
        try Mounts.mount(source: "", target: target, type: nil, flags: [.bind, .remount, .readOnly])
        expectErrno(.readOnlyFileSystem) { try dir.write("with space/new", "x") }
        try dir.write("source/new", "writable at the source")
        #expect(try dir.read("with space/new") == "writable at the source")

        try Mounts.unmount(target, flags: .noFollow)
        mounted = false
        #expect(!Mounts.isMountPoint(target))
        #expect(!dir.descriptor.exists(at: "with space/file"))
    }

    @Test func unescapeUndoesMountinfoOctal() {
        #expect(Mounts.unescape("/a\\040b") == "/a b")
        #expect(Mounts.unescape("/tab\\011x\\134y") == "/tab\tx\\y")
        #expect(Mounts.unescape("/plain") == "/plain")
        #expect(Mounts.unescape("/short\\04") == "/short\\04")
        #expect(Mounts.isMountPoint("/"))
        #expect(Mounts.isMountPoint("/proc"))
    }

    @Test func overlayWithTheNewMountAPI() throws {
        let dir = try TemporaryDirectory()
        for name in ["lower1", "lower2", "upper", "work", "merged"] {
            try dir.descriptor.makeDirectory(at: FilePath(name))
        }
        try dir.write("lower1/top", "from lower1")
        try dir.write("lower1/shadowed", "lower1 wins")
        try dir.write("lower2/bottom", "from lower2")
        try dir.write("lower2/shadowed", "lower2 loses")
        try dir.write("upper/up", "from upper")

        let context = try FileSystemContext(type: "overlay")
        try context.set("lowerdir+", dir.path("lower1").string)
        try context.set("lowerdir+", dir.path("lower2").string)
        try context.set("upperdir", dir.path("upper").string)
        try context.set("workdir", dir.path("work").string)
        try context.create()
        let detached = try context.mount()
        try detached.moveMount(to: dir.path("merged"))
        detached.closeQuietly()
        var mounted = true
        defer { if mounted { try? Mounts.unmount(dir.path("merged"), flags: .detach) } }

        #expect(try dir.read("merged/top") == "from lower1")
        #expect(try dir.read("merged/bottom") == "from lower2")
        #expect(try dir.read("merged/shadowed") == "lower1 wins")
        #expect(try dir.read("merged/up") == "from upper")
        #expect(try FileSystemStatus.of(dir.path("merged")).type == .overlay)
        let entry = try #require(Mounts.mountTable().last { $0.mountPoint == dir.path("merged").string })
        #expect(entry.fileSystemType == "overlay")

        // A write lands in the upper directory; a delete leaves a whiteout there.
        try dir.write("merged/new", "written")
        try dir.descriptor.remove(at: "merged/bottom")
        #expect(try dir.read("upper/new") == "written")
        let whiteout = try dir.descriptor.status(at: "upper/bottom")
        #expect(whiteout.kind == .characterDevice && whiteout.specialDevice == 0)
        #expect(try dir.read("lower2/bottom") == "from lower2")

        try Mounts.unmount(dir.path("merged"))
        mounted = false
        #expect(!dir.descriptor.exists(at: "merged/top"))
    }

    @Test func newMountAPIRefusesBadOptionsAndMountsReadOnly() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "lower")
        try dir.descriptor.makeDirectory(at: "merged")
        try dir.write("lower/f", "ro")

        let bad = try FileSystemContext(type: "overlay")
        expectErrno(.noSuchFileOrDirectory) { try bad.set("lowerdir+", dir.path("missing").string) }
        expectErrno(.operationNotSupportedByDevice) { _ = try FileSystemContext(type: "no-such-filesystem-type") }

        // Two lowers and no upper: a read-only overlay.
        try dir.descriptor.makeDirectory(at: "lower-b")
        let context = try FileSystemContext(type: "overlay")
        try context.set("lowerdir+", dir.path("lower").string)
        try context.set("lowerdir+", dir.path("lower-b").string)
        try context.set(flag: "ro")
        try context.create()
        let detached = try context.mount(readOnly: true)
        try detached.moveMount(to: "merged", relativeTo: dir.descriptor)
        detached.closeQuietly()
        defer { try? Mounts.unmount(dir.path("merged"), flags: .detach) }
        #expect(try dir.read("merged/f") == "ro")
        expectErrno(.readOnlyFileSystem) { try dir.write("merged/g", "x") }
    }

    @Test func fsmountAttributesReachTheMount() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "mnt")
        let context = try FileSystemContext(type: "tmpfs")
        try context.set("size", "1m")
        try context.create()
        let detached = try context.mount(attributes: [.readOnly, .noSetuid, .noDevices, .noExec])
        try detached.moveMount(to: dir.path("mnt"))
        detached.closeQuietly()
        defer { try? Mounts.unmount(dir.path("mnt"), flags: .detach) }

        var vfs = statvfs()
        #expect(statvfs(dir.path("mnt").string, &vfs) == 0)
        let flags = UInt(vfs.f_flag)
        #expect(flags & UInt(ST_RDONLY) != 0)
        #expect(flags & UInt(ST_NOSUID) != 0)
        #expect(flags & 4 != 0)  // ST_NODEV (a GNU extension Swift does not import)
        #expect(flags & 8 != 0)  // ST_NOEXEC
        expectErrno(.readOnlyFileSystem) { try dir.write("mnt/x", "x") }
        #expect(UInt64(vfs.f_bsize) * UInt64(vfs.f_blocks) == 1_048_576)
    }

    @Test func cloneMountAttachesADetachedCopy() throws {
        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "tree")
        try dir.descriptor.makeDirectory(at: "copy")
        try dir.write("tree/file", "cloned")
        let clone = try FileDescriptor.cloneMount(dir.path("tree"))
        try clone.moveMount(to: dir.path("copy"))
        clone.closeQuietly()
        defer { try? Mounts.unmount(dir.path("copy"), flags: .detach) }
        #expect(Mounts.isMountPoint(dir.path("copy")))
        #expect(try dir.read("copy/file") == "cloned")
        expectErrno(.noSuchFileOrDirectory) { try FileDescriptor.cloneMount(dir.path("none")) }
    }

    @Test func recursiveCloneCarriesSubmounts() throws {
        let dir = try TemporaryDirectory()
        for name in ["tree", "tree/sub", "plain", "recursive"] { try dir.descriptor.makeDirectory(at: FilePath(name)) }
        try Mounts.mount(source: "strata-submount", target: dir.path("tree/sub"), type: "tmpfs")
        defer { try? Mounts.unmount(dir.path("tree/sub"), flags: .detach) }
        try dir.write("tree/sub/on-submount", "s")

        let plain = try FileDescriptor.cloneMount(dir.path("tree"))
        try plain.moveMount(to: dir.path("plain"))
        plain.closeQuietly()
        defer { try? Mounts.unmount(dir.path("plain"), flags: .detach) }
        let recursive = try FileDescriptor.cloneMount(dir.path("tree"), recursive: true)
        try recursive.moveMount(to: dir.path("recursive"))
        recursive.closeQuietly()
        defer { try? Mounts.unmount(dir.path("recursive"), flags: [.detach]) }

        #expect(!dir.descriptor.exists(at: "plain/sub/on-submount"))
        #expect(try dir.read("recursive/sub/on-submount") == "s")
        #expect(try FileSystemStatus.of(dir.path("recursive/sub")).type == .tmpfs)
        #expect(try FileSystemStatus.of(dir.path("plain/sub")).type == .ext4)
    }

    @Test func idmappedMountShiftsOwners() throws {
        // A user namespace to map through: a helper process in one, mapping 0-65535 to 100000+.
        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        helper.arguments = ["--user", "sleep", "30"]
        try helper.run()
        // SIGKILL: the helper inherits the test thread's signal mask, which may block SIGTERM.
        defer { kill(helper.processIdentifier, SIGKILL); helper.waitUntilExit() }
        // Wait until the helper has its own user namespace, then write its maps (root may).
        let selfNamespace = try FileDescriptor.currentWorkingDirectory.status(at: "/proc/self/ns/user", followSymlinks: true).inode
        var namespaceReady = false
        for _ in 0..<200 {
            if let mine = try? FileDescriptor.currentWorkingDirectory.status(
                at: FilePath("/proc/\(helper.processIdentifier)/ns/user"), followSymlinks: true),
               mine.inode != selfNamespace {
                namespaceReady = true
                break
            }
            usleep(10_000)
        }
        try #require(namespaceReady)
        for (file, line) in [("uid_map", "0 100000 65536\n"), ("gid_map", "0 200000 65536\n")] {
            let map = try FileDescriptor.currentWorkingDirectory.open(
                at: FilePath("/proc/\(helper.processIdentifier)/\(file)"), .writeOnly)
            try map.closing { fd in try Array(line.utf8).withUnsafeBytes { try fd.writeFully($0) } }
        }
        let namespace = try FileDescriptor.currentWorkingDirectory.open(
            at: FilePath("/proc/\(helper.processIdentifier)/ns/user"), .readOnly)
        defer { namespace.closeQuietly() }

        let dir = try TemporaryDirectory()
        try dir.descriptor.makeDirectory(at: "tree")
        try dir.descriptor.makeDirectory(at: "mapped")
        try dir.write("tree/owned-by-7", "x")
        try dir.descriptor.changeOwner(at: "tree/owned-by-7", user: UserID(rawValue: 7), group: GroupID(rawValue: 8))

        let clone = try FileDescriptor.cloneMount(dir.path("tree"))
        try clone.setIDMapping(userNamespace: namespace)
        try clone.moveMount(to: dir.path("mapped"))
        clone.closeQuietly()
        defer { try? Mounts.unmount(dir.path("mapped"), flags: .detach) }

        let shifted = try dir.descriptor.status(at: "mapped/owned-by-7")
        #expect(shifted.userID.rawValue == 100_007)
        #expect(shifted.groupID.rawValue == 200_008)
        let original = try dir.descriptor.status(at: "tree/owned-by-7")
        #expect(original.userID.rawValue == 7 && original.groupID.rawValue == 8)
    }
}
