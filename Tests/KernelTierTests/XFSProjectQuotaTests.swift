#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import TestSupport
import TestTiers

/// The kernel tier's own check that XFS project quotas are real in its guest: a directory put in
/// a project with a hard block limit refuses writes beyond it, with ENOSPC (an exceeded project
/// quota reports ENOSPC, not EDQUOT).
@Suite(.kernelTier(.xfsProjectQuota), .serialized)
struct XFSProjectQuotaTests {
    /// A project ID for this process, away from small IDs a host may already use.
    let project = 41_000 + UInt32(getpid() % 20_000)

    func xfsQuota(_ mount: String, _ commands: String...) throws {
        try run(try tool("xfs_quota"), ["-x"] + commands.flatMap { ["-c", $0] } + [mount])
    }

    @Test func writeOverProjectHardLimitFailsWithENOSPC() throws {
        let mount = try XFSProjectQuota.scratchMount()
        let dir = try XFSProjectQuota.makeScratchDirectory("quota")
        defer {
            try? xfsQuota(mount, "limit -p bhard=0 \(project)", "project -C -p \(dir) \(project)")
            removeScratchDirectory(dir)
        }
        try xfsQuota(mount, "project -s -p \(dir) \(project)", "limit -p bhard=1m \(project)")

        // Under the limit: fine.
        #expect(writeFile(dir + "/small", bytes: 256 << 10) == nil)
        // Over it: refused.
        let failure = writeFile(dir + "/large", bytes: 4 << 20)
        #expect(failure == ENOSPC, "expected ENOSPC, got \(failure.map { String(cString: strerror($0)) } ?? "no error")")
    }

    @Test func directoryOutsideTheProjectIsNotLimited() throws {
        let mount = try XFSProjectQuota.scratchMount()
        let limited = try XFSProjectQuota.makeScratchDirectory("quota-limited")
        let free = try XFSProjectQuota.makeScratchDirectory("quota-free")
        defer {
            try? xfsQuota(mount, "limit -p bhard=0 \(project + 1)", "project -C -p \(limited) \(project + 1)")
            removeScratchDirectory(limited)
            removeScratchDirectory(free)
        }
        try xfsQuota(mount, "project -s -p \(limited) \(project + 1)", "limit -p bhard=1m \(project + 1)")
        // The same write is refused in the limited directory, so the limit is in force...
        let limitedFailure = writeFile(limited + "/large", bytes: 4 << 20)
        #expect(limitedFailure == ENOSPC, "expected ENOSPC, got \(limitedFailure.map { String(cString: strerror($0)) } ?? "no error")")
        // ...and does not reach a directory outside the project.
        let freeFailure = writeFile(free + "/large", bytes: 4 << 20)
        #expect(freeFailure == nil, "expected no error, got \(freeFailure.map { String(cString: strerror($0)) } ?? "no error")")
    }
}
