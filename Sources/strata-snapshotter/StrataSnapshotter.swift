import ContainerdSnapshotter

@main
enum StrataSnapshotter {
    static func main() async { await SnapshotterCommand.runMain() }
}
