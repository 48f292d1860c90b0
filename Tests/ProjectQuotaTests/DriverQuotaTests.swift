import Foundation
import GraphDriver
import Overlay
import ProjectQuota
import StrataSystem
import SystemPackage
import TestTiers
import Testing

/// The overlay driver with project quotas: limits on container layers, enforced through the
/// overlay mount, usage read from the quota, IDs released with their layers.
@Suite("Driver quotas (kernel tier)", .serialized, .kernelTier(.xfsProjectQuota))
struct DriverQuotaKernelTierTests {
    final class Store {
        let home: String
        let run: String
        let driver: OverlayDriver
        let quota: ProjectQuotaControl

        init() throws {
            home = try QuotaHost.scratch("driver")
            run = "/tmp/strata-quota-run-\(UUID().uuidString.prefix(8))"
            quota = try ProjectQuotaControl(home: FilePath(home))
            driver = try OverlayDriver(home: FilePath(home), runHome: FilePath(run), quota: quota)
        }

        deinit {
            try? driver.cleanup()
            for entry in Mounts.mountTable() where entry.mountPoint.hasPrefix(home) {
                try? Mounts.unmount(FilePath(entry.mountPoint), flags: .detach)
            }
            try? FileManager.default.removeItem(atPath: home)
            try? FileManager.default.removeItem(atPath: run)
        }
    }

    @Test("a size limit holds through the overlay mount and usage comes from the quota")
    func limitThroughMount() throws {
        let store = try Store()
        let base = try LayerID("base"), app = try LayerID("app")
        try store.driver.create(base, parent: nil, options: CreateOptions())
        try store.driver.createReadWrite(app, parent: base, options: CreateOptions(quota: QuotaLimits(size: 10 << 20)))
        let merged = try store.driver.get(app, options: MountOptions())
        defer { try? store.driver.put(app) }

        #expect(writeFile(merged.string + "/inside", count: 4 << 20) == nil)
        let usage = try store.driver.readWriteDiskUsage(app)
        #expect(usage.bytes >= 4 << 20 && usage.bytes < (4 << 20) + (256 << 10))
        #expect(writeFile(merged.string + "/too-much", count: 8 << 20) == .noSpace)

        // The limit belongs to the layer, not the mount: it holds after unmounting and mounting again.
        try store.driver.put(app)
        let again = try store.driver.get(app, options: MountOptions())
        _ = unlink(again.string + "/too-much")
        #expect(writeFile(again.string + "/after-remount", count: 8 << 20) == .noSpace)
    }

    @Test("applying a diff to a limited layer keeps its project and its limit")
    func applyKeepsProject() throws {
        let store = try Store()
        let app = try LayerID("app")
        try store.driver.createReadWrite(app, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 6 << 20)))
        let diff = FilePath(store.home + "/app/diff")
        let before = try #require(try store.quota.projectID(of: diff))
        let source = "/tmp/strata-quota-src-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: source + "/etc", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: source); try? FileManager.default.removeItem(atPath: source + ".tar") }
        try #require(writeFile(source + "/etc/data", count: 2 << 20) == nil)
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-C", source, "-cf", source + ".tar", "."]
        try tar.run()
        tar.waitUntilExit()
        try #require(tar.terminationReason == .exit && tar.terminationStatus == 0,
                     "tar exited with \(tar.terminationStatus) making the diff to apply")
        let input = try FileDescriptor.open(FilePath(source + ".tar"), .readOnly)
        defer { try? input.close() }
        _ = try store.driver.applyDiff(app, parent: nil, from: input, options: ApplyDiffOptions())
        #expect(try store.quota.projectID(of: diff) == before)
        let usage = try store.driver.readWriteDiskUsage(app)
        #expect(usage.bytes >= 2 << 20)
        #expect(writeFile(diff.string + "/etc/more", count: 5 << 20) == .noSpace)
    }

    @Test("inode limits hold through the overlay mount")
    func inodesThroughMount() throws {
        let store = try Store()
        let app = try LayerID("app")
        try store.driver.createReadWrite(app, parent: nil, options: CreateOptions(quota: QuotaLimits(inodes: 20)))
        let merged = try store.driver.get(app, options: MountOptions())
        defer { try? store.driver.put(app) }
        var created = 0
        for i in 0..<50 {
            let fd = open(merged.string + "/f\(i)", O_WRONLY | O_CREAT, 0o644)
            if fd < 0 { break }
            close(fd)
            created += 1
        }
        #expect(created > 0 && created < 20)
    }

    @Test("a removed layer's project ID goes back to the pool with its limits cleared")
    func removeReleases() throws {
        let store = try Store()
        let first = try LayerID("first"), second = try LayerID("second")
        try store.driver.createReadWrite(first, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 1 << 20)))
        let id = try #require(try store.quota.projectID(of: FilePath(store.home + "/first/diff")))
        try store.driver.remove(first)
        try store.driver.createReadWrite(second, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 30 << 20)))
        #expect(try store.quota.projectID(of: FilePath(store.home + "/second/diff")) == id)
        #expect(try store.quota.limits(of: FilePath(store.home + "/second/diff")) == QuotaLimits(size: 30 << 20))
    }
}

/// The quota example program, run where it can work: on the kernel tier's XFS.
@Suite("Quota example (kernel tier)", .kernelTier(.xfsProjectQuota))
struct QuotaExampleKernelTierTests {
    @Test("ProjectQuotaExample limits a directory to 10 MiB and shows the write that fails")
    func example() throws {
        let home = try QuotaHost.scratch("example")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("ProjectQuotaExample").path) && dir.path != "/" {
            dir = dir.deletingLastPathComponent()
        }
        let process = Process()
        process.executableURL = dir.appendingPathComponent("ProjectQuotaExample")
        process.arguments = [home]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("limited to 10 MiB"))
        #expect(text.contains("write after 10 MiB failed") || text.contains("write after 9 MiB failed"), "\(text)")
    }
}
