import Foundation
import GraphDriver
@testable import ProjectQuota
import StrataSystem
import Synchronization
import SystemPackage
import TestTiers
import Testing

/// Scratch directories on a filesystem that enforces project quotas: the kernel tier's XFS
/// (this host's kernel has no XFS quota support, so these suites run in the guest).
enum QuotaHost {
    /// A fresh empty directory on the quota filesystem.
    static func scratch(_ name: String) throws -> String {
        try XFSProjectQuota.makeScratchDirectory("quota-\(name)")
    }
}

/// Writes `count` bytes to a new file; returns the errno of the first failed write, if any.
func writeFile(_ path: String, count: Int) -> Errno? {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { return Errno(rawValue: errno) }
    defer { close(fd) }
    let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
    var written = 0
    while written < count {
        let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, count - written)) }
        if n < 0 { return Errno(rawValue: errno) }
        written += n
    }
    if fsync(fd) != 0 { return Errno(rawValue: errno) }
    return nil
}

@Suite("Project quotas (host)")
struct ProjectQuotaHostTests {
    @Test("a filesystem without project quotas is refused with the reason and the option it needs")
    func unsupportedFilesystem() throws {
        // The home for this test lives on a filesystem without prjquota (tmpfs, or the host's ext4).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-noquota-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let options = Mounts.mountTable().filter { dir.hasPrefix($0.mountPoint) }.max { $0.mountPoint.count < $1.mountPoint.count }
        try #require(options?.superOptions.contains("prjquota") == false, "the temporary directory is on a prjquota filesystem")
        #expect {
            _ = try ProjectQuotaControl(home: FilePath(dir))
        } throws: { error in
            guard let error = error as? StorageError else { return false }
            return error.code == .unsupported && error.reason.contains("prjquota")
        }
        #expect(ProjectQuotaControl.forHome(FilePath(dir)).isSupported == false)
    }

    @Test("processes racing to make the device node all succeed; a wrong file in its place is replaced",
          .enabled(if: getuid() == 0, "mknod of a block device needs root"))
    func deviceNodeRace() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strata-quotanode-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let device = try FileDescriptor.currentWorkingDirectory.status(at: FilePath(dir)).device
        let node = FilePath(dir).appending(ProjectQuotaControl.deviceNodeName)
        for round in 0..<20 {
            try? FileManager.default.removeItem(atPath: node.string)
            let failures = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do throws(StorageError) {
                    try ProjectQuotaControl.makeDeviceNode(node, device: device)
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
            #expect(failures.withLock { $0 } == 0, "round \(round)")
        }
        try? FileManager.default.removeItem(atPath: node.string)
        #expect(FileManager.default.createFile(atPath: node.string, contents: Data("x".utf8)))
        try ProjectQuotaControl.makeDeviceNode(node, device: device)
        let st = try FileDescriptor.currentWorkingDirectory.status(at: node)
        #expect(st.kind == .blockDevice && st.specialDevice == device)
    }
}

@Suite("Project quotas (kernel tier)", .serialized, .kernelTier(.xfsProjectQuota))
struct ProjectQuotaTests {
    @Test("writes under the limit succeed and over it fail with ENOSPC; usage follows the writes")
    func sizeLimit() throws {
        let home = try QuotaHost.scratch("size")
        let quota = try ProjectQuotaControl(home: FilePath(home))
        let layer = home + "/layer"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: false)
        try quota.setLimits(QuotaLimits(size: 10 << 20), on: FilePath(layer))
        #expect(try quota.limits(of: FilePath(layer)) == QuotaLimits(size: 10 << 20))

        #expect(writeFile(layer + "/under", count: 4 << 20) == nil)
        let usage = try #require(try quota.usage(of: FilePath(layer)))
        #expect(usage.bytes >= 4 << 20 && usage.bytes < (4 << 20) + (64 << 10))
        #expect(usage.inodes >= 1 && usage.inodes <= 2)

        try FileManager.default.createDirectory(atPath: layer + "/sub", withIntermediateDirectories: false)
        #expect(writeFile(layer + "/sub/over", count: 8 << 20) == .noSpace)
        // An unlimited sibling is not charged and not limited.
        let free = home + "/free"
        try FileManager.default.createDirectory(atPath: free, withIntermediateDirectories: false)
        #expect(writeFile(free + "/big", count: 12 << 20) == nil)
        #expect(try quota.usage(of: FilePath(free)) == nil)
    }

    @Test("inode limits stop file creation")
    func inodeLimit() throws {
        let home = try QuotaHost.scratch("inodes")
        let quota = try ProjectQuotaControl(home: FilePath(home))
        let layer = home + "/layer"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: false)
        try quota.setLimits(QuotaLimits(inodes: 5), on: FilePath(layer))
        var created = 0
        var failure: Int32 = 0
        for i in 0..<10 {
            let fd = open(layer + "/f\(i)", O_WRONLY | O_CREAT, 0o644)
            if fd < 0 { failure = errno; break }
            close(fd)
            created += 1
        }
        // The directory itself is one of the five inodes.
        #expect(created == 4)
        #expect(failure == ENOSPC || failure == EDQUOT)
    }

    @Test("a released project ID is reused, and its old limits do not stick")
    func releaseAndReuse() throws {
        let home = try QuotaHost.scratch("reuse")
        let quota = try ProjectQuotaControl(home: FilePath(home))
        let first = home + "/first"
        try FileManager.default.createDirectory(atPath: first, withIntermediateDirectories: false)
        try quota.setLimits(QuotaLimits(size: 1 << 20, inodes: 3), on: FilePath(first))
        let id = try #require(try quota.projectID(of: FilePath(first)))
        // The first ID above the home's base that no layer uses and that has no limits: other
        // homes on this filesystem (the other tests') may hold the ones just above it.
        #expect(id > quota.baseProjectID)
        try quota.release(FilePath(first))
        try FileManager.default.removeItem(atPath: first)

        let second = home + "/second"
        try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: false)
        try quota.setLimits(QuotaLimits(size: 20 << 20), on: FilePath(second))
        #expect(try quota.projectID(of: FilePath(second)) == id)
        #expect(try quota.limits(of: FilePath(second)) == QuotaLimits(size: 20 << 20))
        for i in 0..<5 { #expect(writeFile(second + "/f\(i)", count: 1 << 20) == nil) }
    }

    @Test("the device node is made again when it disappears")
    func deviceNodeRecreated() throws {
        let home = try QuotaHost.scratch("node")
        let quota = try ProjectQuotaControl(home: FilePath(home))
        try FileManager.default.removeItem(atPath: quota.deviceNode.string)
        let layer = home + "/layer"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: false)
        try quota.setLimits(QuotaLimits(size: 2 << 20), on: FilePath(layer))
        #expect(FileManager.default.fileExists(atPath: quota.deviceNode.string))
        #expect(writeFile(layer + "/over", count: 4 << 20) == .noSpace)
    }
}
