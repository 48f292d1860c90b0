// Builds a two-layer image in a temporary store, mounts a container layer on it, writes to it,
// and shows the container layer's changes and diff.
//
//   swift run OverlayExample
//
// Needs root (overlay mounts) and a kernel with overlayfs.
import GraphDriver
import LayerArchive
import Overlay
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

guard getuid() == 0 else {
    print("OverlayExample needs root: it mounts overlay filesystems.")
    exit(1)
}

let root = "/tmp/strata-overlay-example-\(getpid())"
let driver: OverlayDriver
do {
    driver = try OverlayDriver(home: FilePath(root + "/home"), runHome: FilePath(root + "/run"))
} catch {
    print("cannot start the overlay driver: \(error)")
    exit(1)
}
defer {
    // Unmounts what the driver mounted (its home among them) before the files go.
    try? driver.cleanup()
    _ = system("rm -rf \(root)")
}
do {
    print("driver status:")
    for item in driver.status { print("  \(item)") }

    // A base layer from a tar stream made on the spot.
    let source = root + "/source"
    _ = mkdir(root, 0o700); _ = mkdir(source, 0o755); _ = mkdir(source + "/etc", 0o755)
    let fd = open(source + "/etc/motd", O_WRONLY | O_CREAT, 0o644)
    _ = "Welcome to Strata\n".withCString { write(fd, $0, strlen($0)) }
    close(fd)
    guard system("tar -C \(source) -cf \(root)/base.tar .") == 0 else { throw StorageError(.io, "tar", reason: "tar failed") }

    let base = try LayerID("base"), app = try LayerID("app")
    try driver.create(base, parent: nil, options: CreateOptions())
    let input = try FileDescriptor.open(FilePath(root + "/base.tar"), .readOnly)
    let size = try driver.applyDiff(base, parent: nil, from: input, options: ApplyDiffOptions())
    try input.close()
    print("applied \(size) bytes to layer base")

    try driver.createReadWrite(app, parent: base, options: CreateOptions())
    let merged = try driver.get(app, options: MountOptions())
    print("container layer app mounted at \(merged)")
    _ = unlink(merged.string + "/etc/motd")
    _ = creat(merged.string + "/etc/hostname", 0o644)
    try driver.put(app)

    print("changes of app against base:")
    for change in try driver.changes(app, parent: base) { print("  \(change)") }
    print("diff size: \(try driver.diffSize(app, parent: base)) bytes")

    let out = try FileDescriptor.open(FilePath(root + "/app.tar"), .writeOnly, options: [.create, .truncate], permissions: .ownerReadWrite)
    _ = try driver.diff(app, parent: base, to: out, options: DiffOptions())
    try out.close()
    print("the diff as a tar (whiteouts as .wh. files):")
    _ = system("tar -tvf \(root)/app.tar | sed 's/^/  /'")

    try driver.remove(app)
    try driver.remove(base)
} catch {
    print("error: \(error)")
}
