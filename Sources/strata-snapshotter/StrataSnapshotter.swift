import ContainerdSnapshotter
import NIOCore
import NIOPosix

@main
enum StrataSnapshotter {
    static func main() async {
        // Request handlers then run on the event loop that read the request, not on Swift
        // concurrency's own threads: no hand-over between two thread pools per call. NIO finds
        // the runtime's enqueue hook with dlsym, which a --static-swift-stdlib binary does not
        // export (the symbol is local in the static runtime): there, handlers stay on Swift's
        // pool, as before.
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await SnapshotterCommand.runMain()
    }
}
