import ContainerdSnapshotter
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

@main
enum StrataSnapshotter {
    static func main() async {
        // Request handlers then run on the event loop that read the request, not on Swift
        // concurrency's own threads: no hand-over between two thread pools per call (under load
        // most of a Prepare's latency was that hand-over). Falls back to the pool when the
        // runtime's hook cannot be found.
        if !NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() {
            var line = Array("strata-snapshotter: Swift concurrency stays on its own thread pool (NIO's event loops could not take it over)\n".utf8)
            _ = line.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
        }
        await SnapshotterCommand.runMain()
    }
}
