import Foundation
import StrataSystem
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small filesystem in a sparse image file, loop-mounted for one test.
final class LoopFileSystem {
    let directory: TemporaryDirectory
    let mountPoint: FilePath

    /// `mkfs` is the command and its options, without the image path.
    init(size: Int64, mkfs: [String], label: String = #function) throws {
        directory = try TemporaryDirectory(label)
        let image = directory.path("image")
        let fd = try directory.descriptor.open(at: "image", .writeOnly, options: [.create], permissions: .init(rawValue: 0o600))
        _ = ftruncate(fd.rawValue, off_t(size))
        fd.closeQuietly()
        try directory.descriptor.makeDirectory(at: "mnt")
        mountPoint = directory.path("mnt")
        let made = try run(mkfs + [image.string])
        try #require(made.status == 0, "\(mkfs.joined(separator: " ")) failed")
        let mounted = try run(["mount", "-o", "loop", image.string, mountPoint.string])
        try #require(mounted.status == 0, "mount -o loop \(image) failed")
    }

    func open() throws -> FileDescriptor { try FileDescriptor.openDirectory(mountPoint) }

    deinit {
        // Unmounting a `mount -o loop` mount frees its loop device (autoclear).
        try? Mounts.unmount(mountPoint)
    }
}

@Suite("Project IDs (FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR)", needsRoot)
struct ProjectIDTests {
    // XFS keeps project IDs in its inodes whether quotas are on or not. (ext4's `project`
    // feature cannot be mounted on this kernel: it is built without CONFIG_QUOTA.)
    @Test func projectIDsAreSetAndInheritedOnXFS() throws {
        let fs = try LoopFileSystem(size: 320 << 20, mkfs: ["mkfs.xfs", "-q", "-f"])
        let root = try fs.open()
        defer { root.closeQuietly() }
        try root.makeDirectory(at: "quota")
        let dir = try root.openDirectory(at: "quota")
        defer { dir.closeQuietly() }

        var attributes = try dir.inodeAttributes()
        #expect(attributes.projectID == 0)
        #expect(!attributes.inheritsProject)
        attributes.projectID = 4242
        attributes.inheritsProject = true
        try dir.setInodeAttributes(attributes)

        let reread = try dir.inodeAttributes()
        #expect(reread.projectID == 4242)
        #expect(reread.inheritsProject)

        // New entries below take the project; a new directory also keeps inheriting.
        let file = try dir.open(at: "file", .writeOnly, options: [.create], permissions: .init(rawValue: 0o644))
        #expect(try file.inodeAttributes().projectID == 4242)
        file.closeQuietly()
        try dir.makeDirectory(at: "sub")
        let sub = try dir.openDirectory(at: "sub")
        #expect(try sub.inodeAttributes().projectID == 4242)
        #expect(try sub.inodeAttributes().inheritsProject)
        sub.closeQuietly()

        // Clearing goes back to project 0.
        var cleared = reread
        cleared.projectID = 0
        cleared.inheritsProject = false
        try dir.setInodeAttributes(cleared)
        #expect(try dir.inodeAttributes() == cleared)
    }

    @Test func ext4WithoutTheProjectFeatureRefusesAProjectID() throws {
        let fs = try LoopFileSystem(size: 64 << 20, mkfs: ["mkfs.ext4", "-q", "-F", "-I", "256", "-O", "^project"])
        let root = try fs.open()
        defer { root.closeQuietly() }
        var attributes = try root.inodeAttributes()
        #expect(attributes.projectID == 0)
        attributes.projectID = 7
        expectErrno(.notSupported) { try root.setInodeAttributes(attributes) }
    }
}
