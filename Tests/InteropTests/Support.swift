import Foundation
import LayerArchive
import StrataSystem
import SystemPackage
// Every file of this target uses the shared helpers (run, sh, scratch directories).
@_exported import TestSupport

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Tools and conditions

/// The programs the interop tests drive, found on the usual root `PATH`.
enum Tool {
    static func find(_ name: String) -> String? {
        for dir in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
            let path = dir + "/" + name
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    static let containersStorage = find("containers-storage")
    static let umoci = find("umoci")

    /// What the fixture script needs besides coreutils.
    static let fixtureTools = ["setfattr", "setcap", "setfacl", "mknod", "tar", "gzip"]
    static var haveFixtureTools: Bool { fixtureTools.allSatisfy { find($0) != nil } }

    static var isRoot: Bool { runningAsRoot }

    /// The repository's `scripts/interop/make-layer-tree.sh`.
    static let fixtureScript: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // InteropTests, Tests, the package
        return url.appendingPathComponent("scripts/interop/make-layer-tree.sh").path
    }()
}

/// Single-quotes `s` for a shell command line.
func quoted(_ s: String) -> String {
    "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// Writes a fixture layer tree with `scripts/interop/make-layer-tree.sh`.
func makeLayerTree(_ variant: String, in directory: String) throws {
    try run("/bin/sh", [Tool.fixtureScript, variant, directory])
}

// MARK: - Scratch directories and mounts

/// A scratch directory for one test on the machine's own filesystem under /tmp. `close()`
/// unmounts whatever is still mounted below it (deepest first) and removes it.
final class Scratch {
    private let scratch: ScratchDirectory
    var path: String { scratch.path }

    init(_ label: String) { scratch = ScratchDirectory("strata-interop-\(label)") }

    func close() { scratch.remove() }

    /// Makes a subdirectory (and its parents) and returns its path.
    @discardableResult
    func directory(_ name: String) throws -> String {
        let p = scratch(name)
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    /// `path/name`.
    func file(_ name: String) -> String { scratch(name) }
}

/// Unmounts every mount at or below `root`, deepest first (containers-storage leaves its home
/// bind-mounted on itself, and a test that fails half-way may leave an overlay mounted).
func unmountAll(below root: String) {
    for _ in 0..<4 {
        let mounts = Mounts.mountTable().map(\.mountPoint)
            .filter { $0 == root || $0.hasPrefix(root + "/") }
            .sorted { $0.count > $1.count }
        if mounts.isEmpty { return }
        for m in mounts {
            if (try? Mounts.unmount(FilePath(m))) == nil {
                try? Mounts.unmount(FilePath(m), flags: .detach)
            }
        }
    }
}

// MARK: - Tar streams through Strata

/// Exports a layer with `LayerExporter` to the file `archive`.
func strataExport(layer: String, lowers: [String], to archive: String, options: ExportOptions = ExportOptions()) throws {
    let fd = try FileDescriptor.open(FilePath(archive), .writeOnly, options: [.create, .truncate],
                                     permissions: .init(rawValue: 0o644))
    defer { try? fd.close() }
    try LayerExporter.export(layer: FilePath(layer), lowers: lowers.map { FilePath($0) }, to: fd,
                             options: options)
}

/// Applies the tar file `archive` to the directory `layer` with `LayerApplier`.
@discardableResult
func strataApply(archive: String, into layer: String, options: ApplyOptions = ApplyOptions()) throws -> ApplyResult {
    try LayerApplier.apply(archive: FilePath(archive), into: FilePath(layer), options: options)
}

// MARK: - containers-storage

/// A private containers-storage store (overlay driver) in a scratch directory.
///
/// containers-storage's CLI ignores storage.conf when `-g`, `-R` or `--storage-opt` are given,
/// so the store is configured only through `CONTAINERS_STORAGE_CONF`.
final class ContainersStorage {
    let graphRoot: String
    let runRoot: String
    let config: String

    /// `overlayOptions` are extra lines for `[storage.options.overlay]`.
    init(in scratch: Scratch, name: String = "cs", overlayOptions: [String] = []) throws {
        graphRoot = try scratch.directory("\(name)/root")
        runRoot = try scratch.directory("\(name)/run")
        config = scratch.file("\(name)/storage.conf")
        let text = """
            [storage]
            driver = "overlay"
            graphroot = "\(graphRoot)"
            runroot = "\(runRoot)"

            [storage.options.overlay]
            mountopt = "nodev"
            \(overlayOptions.joined(separator: "\n"))

            """
        try text.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Runs `containers-storage ARGS…` against this store.
    @discardableResult
    func callAsFunction(_ arguments: String...) throws -> String {
        guard let program = Tool.containersStorage else { throw CommandFailed(description: "containers-storage is not installed") }
        return try run(program, arguments, environment: ["CONTAINERS_STORAGE_CONF": config])
    }

    /// The `diff` directory of a layer (the overlay upper directory).
    func diffDirectory(_ layer: String) -> String { graphRoot + "/overlay/" + layer + "/diff" }

    /// Shuts the store down and unmounts what it left mounted (its home is bind-mounted on itself).
    func close() {
        _ = try? self("shutdown")
        unmountAll(below: graphRoot)
        unmountAll(below: runRoot)
    }

    deinit { close() }
}

// MARK: - Tree snapshots

/// Everything compared about one file of a layer tree.
struct FileRecord: Equatable, CustomStringConvertible {
    var kind: FileKind
    var mode: UInt32
    var uid: UInt32
    var gid: UInt32
    var size: Int64
    /// Content of a regular file.
    var content: [UInt8]?
    var linkTarget: String?
    /// Major and minor of a device.
    var device: String?
    var xattrs: [String: [UInt8]]
    /// Left out for whiteouts, and for directories when asked (see `Tree.read`).
    var mtime: FileTime?
    /// For a regular file with more than one link: the paths of the tree that share its inode,
    /// sorted (its hardlink group); nil otherwise.
    var linkGroup: [String]?

    var isWhiteout: Bool { kind == .characterDevice && device == "0,0" }

    var description: String {
        var parts = ["\(kind)", "mode=\(String(mode, radix: 8))", "owner=\(uid):\(gid)"]
        if kind == .regular { parts.append("size=\(size)") }
        if let linkTarget { parts.append("-> \(linkTarget)") }
        if let device { parts.append("dev=\(device)") }
        if !xattrs.isEmpty { parts.append("xattrs=\(xattrs.keys.sorted())") }
        if let mtime { parts.append("mtime=\(mtime.seconds).\(mtime.nanoseconds)") }
        if let linkGroup { parts.append("links=\(linkGroup)") }
        return parts.joined(separator: " ")
    }
}

/// A layer tree: every path below a root (relative, without `./`), and its record.
struct Tree {
    var files: [String: FileRecord]

    struct Options {
        /// Compare directory modification times.
        var directoryTimes = true
        /// Include the root directory itself as `.`.
        var includeRoot = false
    }

    /// Whether an xattr is part of a layer's contents. Overlayfs bookkeeping that the kernel
    /// writes into an upper directory (`trusted.overlay.origin`, `.impure`, `.uuid`, …) is not:
    /// neither containers-storage nor Strata exports it. `trusted.overlay.opaque` is the one
    /// that is, and it is kept.
    static func isLayerXattr(_ name: String) -> Bool {
        if name.hasPrefix("trusted.overlay.") { return name == "trusted.overlay.opaque" }
        return true
    }

    static func read(_ root: String, _ options: Options = Options()) throws -> Tree {
        var files: [String: FileRecord] = [:]
        var inodes: [UInt64: [String]] = [:]
        let rootFD = try FileDescriptor.openDirectory(FilePath(root))
        defer { rootFD.closeQuietly() }

        func visit(_ dir: FileDescriptor, _ name: String, _ relative: String) throws {
            let p = FilePath(name)
            let st = try dir.status(at: p)
            var xattrs: [String: [UInt8]] = [:]
            // Through a symlink path the xattr calls below act on the link itself (l*xattr).
            for x in try dir.extendedAttributeNames(at: p) where isLayerXattr(x) {
                xattrs[x] = try dir.extendedAttribute(x, at: p) ?? []
            }
            var record = FileRecord(
                kind: st.kind, mode: UInt32(st.mode & 0o7777), uid: st.userID.rawValue, gid: st.groupID.rawValue,
                size: st.kind == .regular ? st.size : 0, content: nil, linkTarget: nil, device: nil,
                xattrs: xattrs, mtime: st.modificationTime, linkGroup: nil)
            switch st.kind {
            case .regular:
                let fd = try dir.open(at: p, .readOnly)
                defer { fd.closeQuietly() }
                record.content = try fd.readToEnd()
                if st.linkCount > 1 { inodes[st.inode, default: []].append(relative) }
            case .symlink:
                record.linkTarget = try dir.readSymbolicLink(at: p)
            case .characterDevice, .blockDevice:
                record.device = "\(st.deviceMajor),\(st.deviceMinor)"
            case .directory:
                if !options.directoryTimes { record.mtime = nil }
            default:
                break
            }
            // A whiteout's time says nothing (overlayfs shares one whiteout inode; appliers mknod anew).
            if record.isWhiteout { record.mtime = nil }
            if relative != "." || options.includeRoot { files[relative] = record }
            if st.kind == .directory {
                let child = try dir.openDirectory(at: p)
                defer { child.closeQuietly() }
                for entry in try child.directoryEntries() {
                    try visit(child, entry.name, relative == "." ? entry.name : relative + "/" + entry.name)
                }
            }
        }
        try visit(rootFD, ".", ".")
        for group in inodes.values {
            let sorted = group.sorted()
            for path in sorted { files[path]?.linkGroup = sorted }
        }
        return Tree(files: files)
    }

    /// The differences between this (expected) tree and `actual`, one line each; empty when they
    /// are the same.
    func differences(from actual: Tree) -> [String] {
        var lines: [String] = []
        for path in Set(files.keys).union(actual.files.keys).sorted() {
            switch (files[path], actual.files[path]) {
            case let (e?, a?):
                lines += Tree.compare(path, e, a)
            case let (e?, nil):
                lines.append("\(path): missing (expected \(e))")
            case let (nil, a?):
                lines.append("\(path): unexpected (\(a))")
            case (nil, nil):
                break
            }
        }
        return lines
    }

    private static func compare(_ path: String, _ e: FileRecord, _ a: FileRecord) -> [String] {
        var lines: [String] = []
        func check<T: Equatable>(_ what: String, _ x: T, _ y: T, _ show: (T) -> String = { "\($0)" }) {
            if x != y { lines.append("\(path): \(what) expected \(show(x)), got \(show(y))") }
        }
        check("kind", e.kind, a.kind)
        check("mode", e.mode, a.mode) { String($0, radix: 8) }
        check("owner", "\(e.uid):\(e.gid)", "\(a.uid):\(a.gid)")
        check("size", e.size, a.size)
        if e.content != a.content { lines.append("\(path): content differs") }
        check("link target", e.linkTarget, a.linkTarget) { $0 ?? "-" }
        check("device", e.device, a.device) { $0 ?? "-" }
        for name in Set(e.xattrs.keys).union(a.xattrs.keys).sorted() {
            check("xattr \(name)", e.xattrs[name], a.xattrs[name]) { $0.map(hex) ?? "absent" }
        }
        check("mtime", e.mtime, a.mtime) { $0.map { "\($0.seconds).\($0.nanoseconds)" } ?? "-" }
        check("hardlinks", e.linkGroup, a.linkGroup) { $0?.description ?? "none" }
        return lines
    }
}

func hex(_ bytes: [UInt8]) -> String {
    "0x" + bytes.map { String(format: "%02x", $0) }.joined()
}
