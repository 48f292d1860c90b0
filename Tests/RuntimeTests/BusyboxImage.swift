import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small image for real containers, made from Debian's busybox-static: `/bin/busybox` with its
/// applet names as hard links (two directories, so a link group spans directories), a second
/// hard-link group owned by uid 1000, files owned by several uids and gids, and files for the
/// container to delete (so that its diff holds whiteouts). Packed once per test process as a tar
/// (GNU tar, numeric owners; about 2 MB, kept in memory) that each test writes into its store and
/// applies with `strata apply-diff`.
enum BusyboxImage {
    static let busybox = "/bin/busybox"

    /// Applet names linked to `/bin/busybox` (the container script uses them).
    static let binApplets = ["sh", "ls", "id", "touch", "cat", "rm", "mkdir", "echo", "su", "stat", "sleep", "test"]
    /// Applet names in `/usr/bin`: the same inode, another directory.
    static let usrBinApplets = ["env", "id"]

    /// Names whose owners the tests check, with the owner the image gives them (container IDs).
    static let checkedOwners: [(path: String, owner: Owner)] = [
        ("/", Owner(uid: 0, gid: 0)),
        ("/bin/busybox", Owner(uid: 0, gid: 0)),
        ("/bin/sh", Owner(uid: 0, gid: 0)),
        ("/bin/ls", Owner(uid: 0, gid: 0)),
        ("/usr/bin/env", Owner(uid: 0, gid: 0)),
        ("/usr/bin/id", Owner(uid: 0, gid: 0)),
        ("/home/user/tool", Owner(uid: 1000, gid: 1000)),
        ("/home/user/tool-link", Owner(uid: 1000, gid: 1000)),
        ("/etc/shadow", Owner(uid: 0, gid: 42)),
        ("/srv/daemon", Owner(uid: 1, gid: 1)),
    ]

    /// The tar of the image, made on first use.
    static let tar: Result<Data, any Error> = Result { try make() }

    private static func make() throws -> Data {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("strata-runtime-image-\(getpid())").path
        try? FileManager.default.removeItem(atPath: work)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let root = work + "/rootfs"
        let fm = FileManager.default
        func dir(_ path: String, _ mode: mode_t, _ uid: uid_t = 0, _ gid: gid_t = 0) throws {
            try fm.createDirectory(atPath: root + path, withIntermediateDirectories: true)
            try check(chown(root + path, uid, gid), path)
            try check(chmod(root + path, mode), path)
        }
        func file(_ path: String, _ text: String, _ mode: mode_t, _ uid: uid_t = 0, _ gid: gid_t = 0) throws {
            guard fm.createFile(atPath: root + path, contents: Data(text.utf8)) else {
                throw ProgramFailure(["create", root + path], "cannot create")
            }
            try check(chown(root + path, uid, gid), path)
            try check(chmod(root + path, mode), path)
        }
        try dir("", 0o755)
        for name in ["/bin", "/usr", "/usr/bin", "/etc", "/home", "/srv", "/proc", "/dev", "/sys"] { try dir(name, 0o755) }
        try dir("/tmp", 0o1777)
        try dir("/root", 0o700)
        try dir("/home/user", 0o755, 1000, 1000)
        try dir("/srv/daemon", 0o755, 1, 1)

        try fm.copyItem(atPath: busybox, toPath: root + "/bin/busybox")
        try check(chmod(root + "/bin/busybox", 0o755), "/bin/busybox")
        for name in binApplets { try check(link(root + "/bin/busybox", root + "/bin/" + name), name) }
        for name in usrBinApplets { try check(link(root + "/bin/busybox", root + "/usr/bin/" + name), name) }

        try file("/etc/passwd", """
            root:x:0:0:root:/root:/bin/sh
            daemon:x:1:1:daemon:/srv/daemon:/bin/sh
            user:x:1000:1000:user:/home/user:/bin/sh

            """, 0o644)
        try file("/etc/group", "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nuser:x:1000:\n", 0o644)
        try file("/etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0, 42)
        try file("/etc/to-delete", "deleted by the container\n", 0o644)
        try file("/home/user/old-note", "deleted by the container\n", 0o644, 1000, 1000)
        try file("/home/user/tool", "#!/bin/sh\necho tool\n", 0o755, 1000, 1000)
        try check(link(root + "/home/user/tool", root + "/home/user/tool-link"), "tool-link")
        try file("/srv/daemon/state", "daemon state\n", 0o600, 1, 1)

        let tar = work + "/busybox.tar"
        try mustRun("/bin/tar", ["--numeric-owner", "--format=pax", "-C", root, "-cf", tar, "."])
        return try Data(contentsOf: URL(fileURLWithPath: tar))
    }

    private static func check(_ status: Int32, _ what: String) throws {
        guard status == 0 else {
            throw ProgramFailure.errno(["image", what])
        }
    }
}
