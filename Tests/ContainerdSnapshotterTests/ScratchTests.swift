import Foundation
import StrataSystem
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("the tests' scratch directories go with what was mounted in them", .serialized,
       .enabled(if: runningAsRoot, "the snapshotter mounts its home"))
struct ScratchTests {
    @Test("a snapshotter killed during a Prepare leaves its home mounted; the scratch directory and that mount go afterwards")
    func scratchIsRemoved() async throws {
        var path = ""
        do {
            let scratch = Scratch("scratch")
            path = scratch.path
            let sn = try SnapshotterProcess(in: scratch)
            try sn.start(killAt: "prepare-after-layer")
            let failure = await statusCode { try await sn.withClient { _ = try await $0.prepare(Request.prepare("a")) } }
            #expect(failure != nil, "the crash point was not reached")
            _ = sn.waitForExit()
            // A killed snapshotter cannot unmount its home's private bind mount.
            #expect(Mounts.mountTable().contains { $0.mountPoint.hasPrefix(path + "/") }, "nothing was left mounted to clean up")
            withExtendedLifetime(scratch) {}
        }
        #expect(!FileManager.default.fileExists(atPath: path), "\(path) is left behind")
        #expect(!Mounts.mountTable().contains { $0.mountPoint.hasPrefix(path + "/") }, "a mount under \(path) is left behind")
    }
}
