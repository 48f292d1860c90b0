import GraphDriver
import StrataSystem
import SystemPackage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A store of layers (the home, the image store, or a read-only additional image store): the
/// name of every file the driver keeps in it and in its layers, and the I/O on them, anchored
/// on the store root's directory descriptor.
///
/// ```
/// <store>/.lock               the store lock
/// <store>/l/<short>           -> ../<id>/diff     26-character base32 names keeping mount data short
/// <store>/staging/            create-…, remove-…, apply-… and differ-… directories
/// <store>/.probe-<pid>-…      a feature probe's scratch directory
/// <store>/<id>/diff/          the layer's own files (the overlay upper directory)
/// <store>/<id>/diff1/ …       shifted copies of the parents' owners (`diffN`)
/// <store>/<id>/work/          overlay's work directory
/// <store>/<id>/merged/        where `get` mounts the layer
/// <store>/<id>/link           the layer's short name
/// <store>/<id>/lower          `l/<short>:l/<short>…`, parent first (absent for base layers)
/// <store>/<id>/empty/         a base layer's stand-in lower directory
/// <store>/<id>/idmaps         the ID mapping the layer's files are owned under
/// <store>/<id>/incomplete     the stamp of the process filling a layer created incomplete
/// <store>/<id>/additionallayer  the additional layer a layer's `diff` links to
/// <store>/<id>/remapping      a remap in flight; `remapping.undo[.diffN]` its journals
/// ```
///
/// Paths handed to the kernel (mount data, mount points) and named in errors are rendered
/// from the store root by ``path(_:)``; everything else goes through ``directory()``.
final class StoreLayout: @unchecked Sendable, Hashable {
    // MARK: - Names in a store

    /// The directory of an image store (`imagestore`, `additionalimagestore`) that is the
    /// store root: `<image store>/overlay`.
    static let driverDirectory = "overlay"

    /// The directory of short links.
    static let linkDirectory = "l"
    /// Where layers are built, removed and staged.
    static let staging = "staging"
    /// The store lock.
    static let lockFile = ".lock"
    /// The prefix of a feature probe's scratch directory (`.probe-<pid>-<random>`).
    static let probePrefix = ".probe-"
    /// Names the driver keeps for itself: no layer may have them.
    static let reservedNames: Set<String> = [linkDirectory, staging]

    // MARK: - Names in a layer's directory

    /// The layer's directories and files as containers/storage keeps them: `diff` (its own
    /// files, the overlay upper directory), `work`, `merged` (its mount point), `link` (its
    /// short name), `lower` (its parents' short links) and `empty` (a base layer's stand-in
    /// lower directory).
    static let diff = "diff", work = "work", merged = "merged", link = "link", lower = "lower", empty = "empty"

    /// Strata's own files of a layer: `idmaps` (the ID mapping its files are owned under, absent
    /// for the identity), `incomplete` (the stamp of the process filling a layer created
    /// incomplete) and `additionallayer` (the additional layer whose files `diff` links to).
    static let idMappings = "idmaps", incomplete = "incomplete", additionalLayer = "additionallayer"

    /// A remap in flight: its marker (by whom, from, to, and the mapping before), its undo
    /// journal (of `diff`; `remapping.undo.diffN` for a copy) and the suffix of a journal being
    /// written.
    static let remapMarker = "remapping", remapJournal = "remapping.undo", journalBeingWritten = ".new"
    /// The marker's line for a remap that installs a new shifted copy (`diff1`).
    static let remapCopyLine = "copy " + copyName(1)

    /// Where a remap builds a new shifted copy before renaming it in as `diff1`, and its overlay
    /// work directory. A crash leaves at most these, which the rollback removes.
    static let copyStaging = "diff1.staging", copyWork = "work1.staging"

    /// Leftovers of operations: the fresh mount point an unmount renames over `merged`, what a
    /// volatile mount leaves in the work directory (overlayfs refuses to reuse it), and the
    /// prefix of an apply's staging tree.
    static let freshMountPoint = "merged.1", volatileIncompat = "work/work/incompat", applyLeftoverPrefix = ".diff.apply-"

    /// The layer's `n`th shifted copy, as containers/storage names its rotated upper
    /// directories: `diff1`, `diff2`…
    static func copyName(_ n: Int) -> String { "diff\(n)" }

    /// The journal of one of a layer's own directories (`diff` or a copy `diffN`).
    static func journal(for tree: String) -> String { tree == diff ? remapJournal : remapJournal + "." + tree }

    /// The subdirectories of an apply through a mount's staging directory.
    enum ApplyWork {
        static let tree = "tree", upper = "upper", work = "work", merged = "merged"
        static let all = [tree, upper, work, merged]
    }

    /// A feature probe's scratch overlay stack, `<probe>/<name>/{lower1,lower2,upper,work,merged}`
    /// (the probe directory is named with `probePrefix`).
    enum ProbeStack {
        static let lower1 = "lower1", lower2 = "lower2", upper = "upper", work = "work", merged = "merged"
        static let all = [lower1, lower2, upper, work, merged]
    }

    /// A differ's staging directory: the tree it fills, and the lock its driver holds.
    enum DifferStaging {
        static let prefix = "differ-"
        static let contents = "diff"
        static let lock = ".lock"
    }

    /// What a directory in `staging/` is for.
    enum StagingKind: String {
        /// A layer being built, renamed in as `<id>` when whole.
        case create
        /// A removed layer, deleted from there.
        case remove
        /// An apply through a mount (`ApplyWork`).
        case apply
    }

    /// A fresh name in `staging/` for a layer: `<kind>-<id>-<random>`.
    static func stagingName(_ kind: StagingKind, _ id: LayerID) -> String { "\(kind.rawValue)-\(id.rawValue)-\(randomSuffix())" }

    /// Whether a name in a layer's directory is a leftover of an operation that did not finish:
    /// an apply's staging tree, a small file's atomic write (`.*.tmp`), a journal being
    /// written or an unmount's fresh mount point.
    static func isLeftover(_ name: String) -> Bool {
        name.hasPrefix(applyLeftoverPrefix) || (name.hasPrefix(".") && name.hasSuffix(".tmp"))
            || name == remapJournal + journalBeingWritten || name == freshMountPoint
    }

    /// Whether a name in a store is a feature probe's scratch directory whose process no
    /// longer runs.
    static func isStaleProbe(_ name: String) -> Bool {
        guard name.hasPrefix(probePrefix), let pid = Int32(name.dropFirst(probePrefix.count).prefix { $0 != "-" }) else { return false }
        return !ProcessStamp.pidExists(pid)
    }

    // MARK: - The store

    /// The store root.
    let root: FilePath
    /// Whether this is a read-only additional image store.
    let readOnly: Bool
    /// The root's descriptor when it was open from the start (no lock on the hot path).
    private let fixed: FileDescriptor?
    /// Else the one opened on first use.
    private let opened = Mutex<FileDescriptor?>(nil)

    /// A store whose root is open already (`descriptor` is the store's from now on).
    init(root: FilePath, descriptor: FileDescriptor) {
        self.root = root
        self.readOnly = false
        self.fixed = descriptor
    }

    /// A read-only store, opened when first used (it may appear after the driver starts).
    init(readOnlyRoot root: FilePath) {
        self.root = root
        self.readOnly = true
        self.fixed = nil
    }

    deinit {
        if let fixed { fixed.closeQuietly() } else { opened.withLock { $0?.closeQuietly() } }
    }

    static func == (a: StoreLayout, b: StoreLayout) -> Bool { a.root == b.root && a.readOnly == b.readOnly }
    func hash(into hasher: inout Hasher) { hasher.combine(root) }

    /// The store root's descriptor: every name of the store is opened relative to it.
    func directory() throws(Errno) -> FileDescriptor {
        if let fixed { return fixed }
        return try opened.withLock { (opened) throws(Errno) -> FileDescriptor in
            if let fd = opened { return fd }
            let fd = try FileDescriptor.openDirectory(root)
            opened = fd
            return fd
        }
    }

    /// The absolute path of a name relative to the store root, for the kernel and for errors.
    func path(_ relative: String) -> FilePath { root.appending(relative) }

    /// `path` as a string built by concatenation (mount data of up to 500 layers).
    func pathString(_ relative: some StringProtocol) -> String { root.string + "/" + relative }

    /// A layer of this store (which need not exist).
    func layer(_ id: LayerID) -> LayerLocation { LayerLocation(id: id, store: self) }

    /// Whether a name relative to the store root exists (a dangling symlink included).
    func exists(_ relative: String) -> Bool {
        guard let fd = try? directory() else { return false }
        return fd.exists(at: FilePath(relative))
    }

    /// Makes `staging/` when missing and a new directory in it; returns its name relative to
    /// the store root.
    func makeStagingDirectory(_ name: String) throws(Errno) -> String {
        let fd = try directory()
        try fd.makeDirectoryIfMissing(at: FilePath(Self.staging))
        let relative = Self.staging + "/" + name
        try fd.makeDirectory(at: FilePath(relative), permissions: .init(rawValue: 0o700))
        return relative
    }

    /// The target of `l/<short>` (or of any link name relative to the store root).
    func readLink(_ relative: String) throws(Errno) -> String {
        try directory().readSymbolicLink(at: FilePath(relative))
    }

    /// `l/<short>`, relative to the store root.
    static func shortLinkName(_ short: some StringProtocol) -> String { linkDirectory + "/" + short }

    /// The store's layer directories' names: entries that are directories (or of unknown
    /// kind, with `directoriesOnly` false), are layer IDs and are not reserved.
    func layerEntries(directoriesOnly: Bool = true) throws(Errno) -> [(id: LayerID, kind: FileKind)] {
        try directory().entries().compactMap { (entry) -> (id: LayerID, kind: FileKind)? in
            guard entry.kind == .directory || (!directoriesOnly && entry.kind == .unknown),
                  !Self.reservedNames.contains(entry.name), let id = try? LayerID(entry.name)
            else { return nil }
            return (id, entry.kind)
        }
    }
}

/// A layer in a store: its names relative to the store root, and its files' I/O.
struct LayerLocation: Sendable, Hashable {
    let id: LayerID
    /// The store holding `l/` and the layer's directory.
    let store: StoreLayout
    /// Whether the store is a read-only additional image store.
    var readOnly: Bool { store.readOnly }

    /// `<store>/<id>`.
    var directory: FilePath { store.root.appending(id.rawValue) }
    /// `<store>/<id>/diff`.
    var diff: FilePath { path(StoreLayout.diff) }

    /// The absolute path of a name in the layer's directory.
    func path(_ name: String) -> FilePath { directory.appending(name) }

    /// A name in the layer's directory, relative to the store root.
    func relative(_ name: String) -> FilePath { FilePath(id.rawValue + "/" + name) }

    /// Whether the layer's directory holds `name`.
    func has(_ name: String) -> Bool {
        guard let fd = try? store.directory() else { return false }
        return fd.exists(at: relative(name))
    }

    /// The status of a name in the layer's directory (the directory itself for `nil`).
    func status(_ name: String? = nil, followSymlinks: Bool = false) throws(Errno) -> FileStatus {
        try store.directory().status(at: name.map(relative) ?? FilePath(id.rawValue), followSymlinks: followSymlinks)
    }

    /// Opens the layer's directory or a directory in it (following a last symlink: an
    /// additional layer's `diff` is one).
    func openDirectory(_ name: String? = nil) throws(Errno) -> FileDescriptor {
        try store.directory().openDirectory(at: name.map(relative) ?? FilePath(id.rawValue), followLastSymlink: true)
    }

    /// Reads a small file of the layer as text.
    func read(_ name: String) throws(Errno) -> String { try store.directory().readText(at: relative(name)) }

    /// Writes a small file of the layer, atomically through a temporary name.
    func write(_ text: String, to name: String) throws(Errno) { try store.directory().writeText(text, at: relative(name)) }

    /// Removes a file of the layer; a missing one is no error when `missingOK`.
    func remove(_ name: String, missingOK: Bool = false) throws(Errno) {
        do throws(Errno) { try store.directory().remove(at: relative(name)) } catch .noSuchFileOrDirectory where missingOK {}
    }

    /// Removes a tree of the layer's directory when it is there.
    func removeTreeIfPresent(_ name: String) throws(Errno) {
        let fd = try store.directory()
        if fd.exists(at: relative(name)) { try fd.removeTree(at: relative(name)) }
    }

    /// Makes a directory in the layer's directory.
    func makeDirectory(_ name: String, permissions: FilePermissions, ifMissing: Bool = false) throws(Errno) {
        let fd = try store.directory()
        if ifMissing {
            try fd.makeDirectoryIfMissing(at: relative(name), permissions: permissions)
        } else {
            try fd.makeDirectory(at: relative(name), permissions: permissions)
        }
    }

    /// Renames a name of the layer's directory to another.
    func rename(_ name: String, to other: String, flags: RenameFlags = []) throws(Errno) {
        try store.directory().rename(relative(name), to: relative(other), flags: flags)
    }

    /// The layer's short name from its `link` file, `nil` when missing or not a short name.
    var shortName: String? { (try? store.directory())?.readShortName(at: relative(StoreLayout.link)) }

    /// The entries of the layer's `lower` file (`l/<short>`), parent first; empty for a base layer.
    func lowerEntries() throws(Errno) -> [Substring] {
        do throws(Errno) {
            let text = try read(StoreLayout.lower)
            return text.split(separator: ":").map { $0.hasSuffix("\n") ? $0.dropLast() : $0 }.filter { !$0.isEmpty }
        } catch .noSuchFileOrDirectory {
            return []
        }
    }

    /// The first entry of the layer's `lower` file (the parent's `l/<short>`), read from no
    /// more of the file than that entry: a direct child's `lower` always starts with its
    /// parent's link, and deep layers' files run to 500 entries.
    var firstLowerEntry: String? {
        guard let fd = try? store.directory().open(at: relative(StoreLayout.lower), flags: O_RDONLY | O_NOFOLLOW)
        else { return nil }
        defer { fd.closeQuietly() }
        // `l/` and a 26-character short name, then `:` or a newline.
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = (try? buffer.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: 0, into: $0) }) ?? 0
        let first = buffer[0..<n].split(whereSeparator: { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "\n") }).first
        return first.map { String(decoding: $0, as: UTF8.self) }
    }

    /// The layer's shifted copies (`diff1`…), in mount order, stopping at the first missing one.
    var copyNames: [String] { store.copyNames(under: id.rawValue) }
}

extension StoreLayout {
    /// The shifted copies' names under a layer directory named relative to the store root (an
    /// ID, or `l/<short>/..` for a parent), in mount order, stopping at the first missing one.
    func copyNames(under directory: String) -> [String] {
        guard let fd = try? self.directory() else { return [] }
        var result: [String] = []
        var n = 1
        while fd.exists(at: FilePath(directory + "/" + Self.copyName(n))) {
            result.append(Self.copyName(n))
            n += 1
        }
        return result
    }
}

/// The names of the run home's files.
///
/// ```
/// <runhome>/features          the feature cache
/// <runhome>/mounts/<id>       a layer's mount count, and its lock
/// <runhome>/<id>/merged/      the mount point of a layer of a read-only store
/// <runhome>/naive-<id>-…/     old/ and new/: the views of a diff by comparison
/// ```
enum RunHomeLayout {
    static let features = "features"
    static let mounts = "mounts"
    static let naivePrefix = "naive-"
    static let naiveViews = (old: "old", new: "new")

    /// `<runhome>/<id>/merged`, relative to the run home.
    static func readOnlyMountPoint(_ id: LayerID) -> String { id.rawValue + "/" + StoreLayout.merged }
}

/// The names of a layer in an additional layer store: `<store>/[base64(reference)/]<digest>/`.
enum AdditionalLayerLayout {
    /// The layer's files.
    static let contents = "diff"
    /// JSON about it.
    static let info = "info"
    /// Its compressed tar.
    static let blob = "blob"
}
