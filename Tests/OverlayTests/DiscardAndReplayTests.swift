import DriverConformance
import Foundation
import GraphDriver
import Overlay
import StrataSystem
import SystemPackage
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A quota control that accepts every limit and records which directories it was asked to
/// limit and to release: the driver's calls, not a filesystem's quotas.
final class RecordingQuota: QuotaControl, @unchecked Sendable {
    let limited = Mutex<[String]>([])
    let released = Mutex<[String]>([])
    var isSupported: Bool { true }
    func setLimits(_ limits: QuotaLimits, on directory: FilePath) throws(StorageError) {
        limited.withLock { $0.append(directory.string) }
    }
    func usage(of directory: FilePath) throws(StorageError) -> DiskUsage? { nil }
    func release(_ directory: FilePath) throws(StorageError) {
        released.withLock { $0.append(directory.string) }
    }
}

/// A labeler whose relabel always fails: a create that gets past its quota and then fails.
struct FailingLabeler: MountLabeler {
    var isEnabled: Bool { true }
    func mountOption(for label: SELinuxContext) throws(StorageError) -> MountOption? { nil }
    func relabel(_ path: FilePath, label: SELinuxContext, shared: Bool) throws(StorageError) {
        throw StorageError(.unsupported, "relabel", path: path.string, reason: "injected failure")
    }
}

@Suite("Discarding layers and replaying hard links", needsRoot)
struct DiscardAndReplayTests {
    @Test("a create that fails after its quota was set releases the quota project of what it deletes")
    func createRollbackReleasesQuota() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let quota = RecordingQuota()
        let driver = try OverlayDriver(home: store.home, runHome: store.runHome,
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]),
                                       quota: quota, labeler: FailingLabeler())
        let layer = try LayerID("limited")
        #expect(throws: StorageError.self) {
            try driver.createReadWrite(layer, parent: nil, options: CreateOptions(
                quota: QuotaLimits(size: 1 << 20), mountLabel: try SELinuxContext("system_u:object_r:container_file_t:s0")))
        }
        let limited = quota.limited.withLock { $0 }
        #expect(limited.count == 1)
        #expect(quota.released.withLock { $0 } == limited, "the rolled-back create kept its quota project")
        #expect(!driver.exists(layer))
        #expect(try Files.list("staging", in: store.home).isEmpty)
    }

    @Test("remove releases the quota, drops the short link (a link file ending in a newline too) and the count")
    func removeDiscardsEverything() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let quota = RecordingQuota()
        let driver = try OverlayDriver(home: store.home, runHome: store.runHome,
                                       options: DriverOptions(parsing: ["skip_mount_home=true"]), quota: quota)
        let layer = try LayerID("rw")
        try driver.createReadWrite(layer, parent: nil, options: CreateOptions(quota: QuotaLimits(size: 1 << 20)))
        _ = try driver.get(layer, options: MountOptions())
        try driver.put(layer)
        let linkFile = store.home.appending("rw/link")
        let short = try #require(Files.read("link", in: store.home.appending("rw")))
        try Files.write(short + "\n", at: "link", in: store.home.appending("rw"))
        #expect(FileManager.default.fileExists(atPath: linkFile.string))
        try driver.remove(layer)
        #expect(quota.released.withLock { $0 }.count == 1)
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: store.home.appending("l/\(short)").string)) == nil,
                "the short link outlived its layer")
        #expect(!FileManager.default.fileExists(atPath: store.runHome.appending("mounts/rw").string))
        #expect(try Files.list("staging", in: store.home).isEmpty)
    }

    @Test("cleanup fails when it cannot take the store lock, instead of doing nothing")
    func cleanupNeedsTheLock() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        // A directory where the lock file belongs: the lock cannot be opened.
        try? FileManager.default.removeItem(atPath: store.home.appending(".lock").string)
        try FileManager.default.createDirectory(atPath: store.home.appending(".lock").string, withIntermediateDirectories: false)
        #expect(throws: StorageError.self) { try driver.cleanup() }
    }

    @Test("an apply through a mount keeps more hard-link groups than there are descriptors to spare")
    func manyHardLinkGroups() throws {
        let store = try TemporaryStore()
        defer { store.destroy() }
        let driver = try store.driver()
        let layers = try buildChain(driver, count: 3)
        let groups = 1200
        let tar = store.root.appending("links.tar")
        try writeTar(tar, python: """
            add('d', type=tarfile.DIRTYPE, mode=0o755)
            for i in range(\(groups)):
                add('d/f%d' % i, b'%d' % i)
                add('d/g%d' % i, type=tarfile.LNKTYPE, linkname='d/f%d' % i)
            """)
        // Applied in a child process whose RLIMIT_NOFILE is below the number of link groups:
        // one descriptor held per group cannot succeed, and the limit touches no other test.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = ["--testing-library", "swift-testing", "--filter", "LowFileLimitApplyEntry"]
        var environment = ProcessInfo.processInfo.environment
        environment[LowFileLimitApplyEntry.variable] = "\(store.root.string);\(tar.string);\(groups - 400)"
        process.environment = environment
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(Files.read("child-errors.log", in: store.root) ?? "")")
        let diff = store.home.appending("layer2/diff/d")
        var unlinked = 0
        for i in 0..<groups {
            let a = try FileManager.default.attributesOfItem(atPath: diff.appending("f\(i)").string)
            let b = try FileManager.default.attributesOfItem(atPath: diff.appending("g\(i)").string)
            if (a[.systemFileNumber] as? Int) != (b[.systemFileNumber] as? Int) { unlinked += 1 }
        }
        #expect(unlinked == 0, "\(unlinked) of \(groups) hard-link groups came out as separate files")
        #expect(store.mounts().isEmpty)
        #expect(try Files.list("staging", in: store.home).isEmpty)
    }
}

/// The child half of `manyHardLinkGroups`: lowers its descriptor limit, then applies the tar to
/// `layer2` against `layer0` (through a mount). Skipped unless started by that test.
@Suite struct LowFileLimitApplyEntry {
    static let variable = "STRATA_LOW_NOFILE_APPLY"

    @Test(.enabled(if: ProcessInfo.processInfo.environment[LowFileLimitApplyEntry.variable] != nil,
                   "entry point for manyHardLinkGroups' child process; runs only in that child"))
    func lowFileLimitApplyEntry() throws {
        let orders = try #require(ProcessInfo.processInfo.environment[Self.variable])
        let parts = orders.split(separator: ";").map(String.init)
        let root = FilePath(parts[0])
        var status: Int32 = 0
        do {
            let driver = try OverlayDriver(home: root.appending("home"), runHome: root.appending("run"),
                                           options: DriverOptions(parsing: ["skip_mount_home=true"]))
            let fd = try FileDescriptor.open(FilePath(parts[1]), .readOnly)
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            limit.rlim_cur = rlim_t(Int(parts[2])!)
            guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { throw Errno(rawValue: errno) }
            _ = try driver.applyDiff(try LayerID("layer2"), parent: try LayerID("layer0"), from: fd, options: ApplyDiffOptions())
        } catch {
            _ = FileManager.default.createFile(atPath: root.appending("child-errors.log").string, contents: Data("\(error)\n".utf8))
            status = 2
        }
        exit(status)
    }
}
