import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One timed CLI call of a comparison case.
struct CompareStep {
    /// The row's name (`apply-diff minbase`, `mount depth 128`…).
    var label: String
    /// The timed command; nil when this side has no such command (`reason` says why).
    var arguments: [String]?
    var reason: String? = nil
    /// Where the command's standard output goes (default /dev/null).
    var standardOutput: String? = nil
    /// Untimed, after the call: checks or describes what it produced (compared across sides).
    var summary: (() throws -> String)? = nil
    /// Skip (and report "cannot") when the step before failed: unmount after a refused mount.
    var needsPreviousStep = false

    init(_ label: String, _ arguments: [String]?, reason: String? = nil, standardOutput: String? = nil,
         summary: (() throws -> String)? = nil) {
        self.label = label
        self.arguments = arguments
        self.reason = reason
        self.standardOutput = standardOutput
        self.summary = summary
    }
}

/// A comparison case: untimed preparation of a store (on a fresh filesystem per run and side),
/// then timed steps, in order, on that store.
protocol CompareCase {
    var name: String { get }
    func scratchSize(_ context: BenchContext) -> Int64
    func prepare(_ store: BenchStore, _ context: BenchContext) throws -> [CompareStep]
}

extension BenchStore {
    /// A layer's diff directory (the same layout on both sides: `<home>/overlay/<id>/diff`).
    func diffDirectory(_ id: String) -> String {
        side == .containersStorage ? fs.path("cs/root/overlay/\(id)/diff") : fs.path("strata/overlay/\(id)/diff")
    }
}

/// `apply-diff FIXTURE`: the fixture tar applied to a new empty layer.
struct ApplyDiffCase: CompareCase {
    let fixture: Fixture
    var name: String { "apply-diff \(fixture)" }
    func scratchSize(_ context: BenchContext) -> Int64 { fixture.scratchSize(in: context.workDirectory) }

    func prepare(_ store: BenchStore, _ context: BenchContext) throws -> [CompareStep] {
        try store.run(store.createLayer("layer"))
        let archive = fixture.archive(in: context.workDirectory)
        Shell.warm(archive)
        return [CompareStep("apply-diff \(fixture)", store.applyDiff("layer", archive: archive)) {
            try TreeSummary(store.diffDirectory("layer")).description
        }]
    }
}

/// The uid/gid maps for ID shifting: two ranges that are not contiguous on the host side, which
/// makes containers-storage take its chown walk (it only uses idmapped mounts, skipping the walk,
/// for a single contiguous range).
let shiftMaps = [BenchIDMap(container: 0, host: 100_000, size: 1000),
                 BenchIDMap(container: 1000, host: 200_000, size: 64_536)]

/// Operations on a layer changed through a mount: a minbase base layer, and a child layer made by
/// mounting it and deleting, adding and chmod-ing files (so containers-storage has no stored tar
/// to replay and must compute diffs from the tree, as Strata does).
struct ChangedLayerCase: CompareCase {
    var name: String { "changed layer (minbase base)" }
    func scratchSize(_ context: BenchContext) -> Int64 { 2 << 30 }

    func prepare(_ store: BenchStore, _ context: BenchContext) throws -> [CompareStep] {
        try store.run(store.createLayer("base"))
        try store.run(store.applyDiff("base", archive: Fixture.minbase.archive(in: context.workDirectory)))
        try store.run(store.createLayer("child", parent: "base"))
        try store.throughMount("child") { merged in
            try Shell.run(["sh", "-c", """
                set -e
                cd '\(merged)'
                rm -rf usr/share/doc usr/share/man var/cache/debconf
                mkdir -p opt/copy
                cp -a usr/lib/x86_64-linux-gnu opt/copy/lib
                cp -a usr/share/zoneinfo opt/copy/zoneinfo
                chmod -R g+w etc
                echo bench >> etc/hostname
                """])
        }
        let out = store.fs.path("diff-out.tar")
        let lines = store.fs.path("changes.txt")
        let sizeOut = store.fs.path("diff-size.txt")
        let usageOut = store.fs.path("usage.txt")
        return [
            CompareStep("diff (changed layer)", store.diff("child", output: out)) {
                defer { unlink(out) }
                let listing = store.fs.path("listing.txt")
                defer { unlink(listing) }
                _ = try Shell.measure(["tar", "-tf", out], stdoutTo: listing)
                return "\(Shell.readLines(listing).count) tar entries"
            },
            CompareStep("changes (changed layer)", store.changes("child"), standardOutput: lines) {
                "\(Shell.readLines(lines).count) changes"
            },
            CompareStep("diff-size (changed layer)", store.diffSize("child"), standardOutput: sizeOut) {
                Shell.readLines(sizeOut).joined(separator: " ")
            },
            store.side == .containersStorage
                ? CompareStep("usage (changed layer)", nil, reason: "no CLI command")
                : CompareStep("usage (changed layer)", store.command(["usage", "child"]), standardOutput: usageOut) {
                    Shell.readLines(usageOut).joined(separator: " ")
                },
            CompareStep("create-layer (child of minbase)", store.createLayer("new", parent: "base")),
            CompareStep("CLI no-op (exists)", store.exists("base")),
        ]
    }
}

/// Mount and unmount at depth 1, 100, 128 and 500: a mount of a layer with 0, 99, 127 and 499
/// layers below it (depth counts every layer in the mount, the mounted one included), in one
/// chain of 500 empty layers made with create-layer (untimed). Strata creates at most 500 layers in
/// a chain (a layer with 499 parents), so that even its read-only mount, which stacks the layer's
/// own diff as a lower, stays within overlayfs's 500 lowers.
struct MountDepthCase: CompareCase {
    static let depths = [1, 100, 128, 500]
    var name: String { "mount depth" }
    func scratchSize(_ context: BenchContext) -> Int64 { 2 << 30 }

    func prepare(_ store: BenchStore, _ context: BenchContext) throws -> [CompareStep] {
        let deepest = Self.depths.max()!
        var built = -1
        var failure: String?
        for i in 0..<deepest {
            let parent = i == 0 ? nil : "c\(i - 1)"
            let usage = try Shell.measure(store.createLayer("c\(i)", parent: parent), stdoutTo: "/dev/null")
            if usage.status != 0 {
                failure = "create-layer of a layer \(i + 1) deep failed"
                break
            }
            built = i
        }
        if let failure { context.log("\(store.side) mount depth: \(failure)") }
        var steps: [CompareStep] = []
        for depth in Self.depths {
            if depth - 1 > built {
                steps.append(CompareStep("mount depth \(depth)", nil, reason: "cannot (\(failure ?? "?"))"))
                steps.append(CompareStep("unmount depth \(depth)", nil, reason: "cannot"))
                continue
            }
            let merged = store.fs.path("merged-\(depth).txt")
            steps.append(CompareStep("mount depth \(depth)", store.mount("c\(depth - 1)"), standardOutput: merged) {
                let path = Shell.readLines(merged).first ?? ""
                var st = stat()
                guard stat(path, &st) == 0 else { throw BenchError("mount printed \(path), which is not there") }
                return "mounted"
            })
            var unmount = CompareStep("unmount depth \(depth)", store.unmount("c\(depth - 1)"))
            unmount.needsPreviousStep = true
            steps.append(unmount)
        }
        return steps
    }
}

/// ID shift: a child of a base layer created with uid/gid maps that differ from the base's, so
/// both drivers must present the base's files with shifted owners in the new layer.
struct IDShiftCase: CompareCase {
    let fixture: Fixture
    var name: String { "id-shift \(fixture)" }
    func scratchSize(_ context: BenchContext) -> Int64 {
        // The shifted copy-up doubles the inodes; ext4 gives one inode per 16 KiB.
        max(fixture.scratchSize(in: context.workDirectory), fixture == .small ? 6 << 30 : 2 << 30)
    }

    func prepare(_ store: BenchStore, _ context: BenchContext) throws -> [CompareStep] {
        try store.run(store.createLayer("base"))
        try store.run(store.applyDiff("base", archive: fixture.archive(in: context.workDirectory)))
        var steps = [CompareStep("id-shift \(fixture) (create-layer --parent, maps)",
                                 store.createLayer("shifted", parent: "base", uidMaps: shiftMaps, gidMaps: shiftMaps)) {
            // What the new layer presents: the owner of a base file seen through its mount.
            var owner = "?"
            try store.throughMount("shifted") { merged in
                var st = stat()
                // A file of the base layer (not the root directory: c/s re-creates the upper
                // directory after its walk, owned by host root).
                let probe = switch fixture {
                case .minbase: "/etc/passwd"
                case .small: "/000/000/file-0"
                case .large: "/blob-0.bin"
                }
                if lstat(merged + probe, &st) == 0 { owner = "\(st.st_uid):\(st.st_gid)" }
            }
            return "base file owned by \(owner) in the shifted layer"
        }]
        // An idmapped mount of a container layer on the base with one contiguous range (what a
        // runtime's user namespace gets): no file is rewritten but the layer's empty root.
        let container = ["--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536"]
        if store.side == .containersStorage {
            steps.append(CompareStep("id-shift \(fixture) (in place: strata remap)", nil, reason: "no CLI command"))
            steps.append(CompareStep("id-shift \(fixture) (mount --uidmap, idmapped)", nil, reason: "not compared"))
            steps.append(CompareStep("id-shift \(fixture) (chown -R of the base tree, reference)", nil, reason: "timed on the strata side"))
        } else {
            try store.run(store.command(["create-layer", "app", "--parent", "base", "--rw"]))
            steps.append(CompareStep("id-shift \(fixture) (mount --uidmap, idmapped)", store.command(["mount", "app"] + container)))
            var unmount = CompareStep("id-shift \(fixture) (unmount)", store.command(["unmount", "app"]))
            unmount.needsPreviousStep = true
            steps.append(unmount)
            steps.append(CompareStep("id-shift \(fixture) (in place: strata remap)",
                                     store.command(["remap", "base"] + shiftMaps.flatMap { ["--uidmap", $0.text] }
                                                   + shiftMaps.flatMap { ["--gidmap", $0.text] })))
            // The target for a shifted child: within 1.5x of chowning the same tree in place.
            steps.append(CompareStep("id-shift \(fixture) (chown -R of the base tree, reference)",
                                     ["chown", "-R", "400000:400000", fs(store, "strata/overlay/base/diff")]))
        }
        return steps
    }
}

/// A path in the store's scratch filesystem.
private func fs(_ store: BenchStore, _ relative: String) -> String { store.fs.path(relative) }

/// The cases `compare --case` can name.
enum CompareKind: String, CaseIterable {
    case apply, layerOps = "layer-ops", mount, idShift = "id-shift"
}
