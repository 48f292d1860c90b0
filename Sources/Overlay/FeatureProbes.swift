import GraphDriver
import StrataSystem
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What overlayfs on this kernel and backing filesystem can do, found by trying it once and
/// cached in the run home (`<runhome>/features`) for later processes.
public struct OverlayFeatures: Sendable, Hashable {
    /// The filesystem holding the home.
    public var backingFileSystem: FileSystemType
    /// Whether directory entries carry their file type (overlayfs needs it).
    public var supportsDType: Bool
    /// Whether an overlay with an upper directory over two lowers mounts.
    public var supportsMultipleLowers: Bool
    /// Whether layer diffs can be read straight from `diff/` (opaque directories survive copy-up,
    /// renamed directories do not become redirects, metacopy is off).
    public var nativeDiff: Bool
    /// Why native diff is off, when it is.
    public var nativeDiffReason: String?
    /// Whether `metacopy=on` mounts and copies up metadata only.
    public var supportsMetacopy: Bool
    /// Whether the kernel turns metacopy on by default (so mounts use it).
    public var usingMetacopy: Bool
    /// Whether `volatile` mounts.
    public var supportsVolatile: Bool
    /// Whether `lowerdir+` (the new mount API's one-layer-at-a-time lowers) works.
    public var supportsLowerdirAppend: Bool
    /// Whether overlayfs stacks idmapped lower layers on this backing filesystem.
    public var supportsIdmappedLowers: Bool

    /// Bumped when a probe changes, so that caches written by older code are probed again.
    static let cacheVersion = 3

    /// The cache's text form, one `key=value` a line.
    var serialized: String {
        [
            "version=\(Self.cacheVersion)", "fs=\(backingFileSystem.rawValue)", "dtype=\(supportsDType)", "multilower=\(supportsMultipleLowers)",
            "nativediff=\(nativeDiff)", "nativediffreason=\(nativeDiffReason ?? "")",
            "metacopy=\(supportsMetacopy)", "usingmetacopy=\(usingMetacopy)", "volatile=\(supportsVolatile)",
            "lowerdirappend=\(supportsLowerdirAppend)", "idmappedlowers=\(supportsIdmappedLowers)",
        ].joined(separator: "\n") + "\n"
    }
}

extension OverlayFeatures {
    /// Reads the cache's text form; `nil` when it is from another version or filesystem.
    init?(serialized text: String, expecting type: FileSystemType) {
        var values: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[line[..<eq]] = line[line.index(after: eq)...]
        }
        func flag(_ key: Substring) -> Bool? { values[key].flatMap { Bool(String($0)) } }
        guard values["version"].flatMap({ Int($0) }) == Self.cacheVersion,
              let fs = values["fs"].flatMap({ UInt64($0) }), fs == type.rawValue,
              let dtype = flag("dtype"), let multi = flag("multilower"), let native = flag("nativediff"),
              let metacopy = flag("metacopy"), let using = flag("usingmetacopy"), let volatile = flag("volatile"),
              let append = flag("lowerdirappend"), let idmapped = flag("idmappedlowers")
        else { return nil }
        let reason = values["nativediffreason"].map(String.init)
        self.init(backingFileSystem: type, supportsDType: dtype, supportsMultipleLowers: multi, nativeDiff: native,
                  nativeDiffReason: reason?.isEmpty == false ? reason : nil, supportsMetacopy: metacopy,
                  usingMetacopy: using, supportsVolatile: volatile, supportsLowerdirAppend: append,
                  supportsIdmappedLowers: idmapped)
    }
}

/// Probes overlayfs features in a scratch directory of the home.
enum FeatureProbes {
    /// The cached features when they match `type`, else a fresh probe saved to the cache.
    static func load(home: FilePath, runHome: FileDescriptor, type: FileSystemType) throws(StorageError) -> OverlayFeatures {
        if let text = try? runHome.readText(at: FilePath(RunHomeLayout.features)),
           let cached = OverlayFeatures(serialized: text, expecting: type) {
            return cached
        }
        let features = try probe(home: home, type: type)
        try? runHome.writeText(features.serialized, at: FilePath(RunHomeLayout.features))
        return features
    }

    /// Runs every probe.
    static func probe(home: FilePath, type: FileSystemType) throws(StorageError) -> OverlayFeatures {
        let scratch = home.appending(StoreLayout.probePrefix + "\(getpid())-\(randomSuffix())")
        try attempt("make probe directory", scratch) { () throws(Errno) in
            try FileDescriptor.currentWorkingDirectory.makeDirectory(at: scratch, permissions: .init(rawValue: 0o700))
        }
        defer {
            if let fd = try? FileDescriptor.openDirectory(home) {
                try? fd.removeTree(at: FilePath(scratch.lastComponent!.string))
                fd.closeQuietly()
            }
        }
        let dtype = probeDType(scratch)
        guard dtype else {
            throw StorageError(.unsupported, "start overlay driver", path: home.string, reason:
                "the backing filesystem (\(type)) does not record file types in directory entries (d_type); "
                    + "overlayfs cannot run on it (for XFS, format it with ftype=1)")
        }
        let multi = probeMultipleLowers(scratch)
        guard multi.ok else {
            throw StorageError(.unsupported, "start overlay driver", path: home.string, reason:
                "overlayfs with several lower layers does not mount on \(type): \(multi.error.map { "\($0)" } ?? "?")")
        }
        let usingMetacopy = readKernelParameter("metacopy") == "Y"
        let metacopy = probeMetacopy(scratch)
        var nativeReason = probeNativeDiff(scratch)
        if nativeReason == nil, usingMetacopy { nativeReason = "metacopy is on" }
        return OverlayFeatures(
            backingFileSystem: type, supportsDType: dtype, supportsMultipleLowers: true, nativeDiff: nativeReason == nil,
            nativeDiffReason: nativeReason, supportsMetacopy: metacopy, usingMetacopy: usingMetacopy,
            supportsVolatile: probeVolatile(scratch), supportsLowerdirAppend: probeLowerdirAppend(scratch),
            supportsIdmappedLowers: probeIdmappedLowers(scratch))
    }

    /// `/sys/module/overlay/parameters/<name>`.
    static func readKernelParameter(_ name: String) -> String? {
        (try? FileDescriptor.currentWorkingDirectory.readText(at: FilePath("/sys/module/overlay/parameters/\(name)")))?
            .trimmingCharacters(in: " \n")
    }

    /// An xattr of `path` (read through its directory: path-anchored xattr calls need a real
    /// directory descriptor).
    private static func attribute(_ path: FilePath, _ name: String) -> [UInt8]? {
        guard let last = path.lastComponent, let dir = try? FileDescriptor.openDirectory(path.removingLastComponent())
        else { return nil }
        defer { dir.closeQuietly() }
        return (try? dir.extendedAttribute(name, at: FilePath(last.string))) ?? nil
    }

    private static func setAttribute(_ path: FilePath, _ name: String, _ value: [UInt8]) -> Bool {
        guard let last = path.lastComponent, let dir = try? FileDescriptor.openDirectory(path.removingLastComponent())
        else { return false }
        defer { dir.closeQuietly() }
        return (try? dir.setExtendedAttribute(name, value, at: FilePath(last.string))) != nil
    }

    private static func probeDType(_ scratch: FilePath) -> Bool {
        guard let dir = try? FileDescriptor.openDirectory(scratch) else { return false }
        defer { dir.closeQuietly() }
        guard (try? dir.makeDirectory(at: "dtype")) != nil,
              let entries = try? dir.directoryEntries() else { return false }
        return entries.contains { $0.name == "dtype" && $0.kind == .directory }
    }

    /// Makes `<scratch>/<name>/{lower1,lower2,upper,work,merged}` and returns its path.
    static func makeStack(_ scratch: FilePath, _ name: String) -> FilePath? {
        let root = scratch.appending(name)
        for sub in [""] + StoreLayout.ProbeStack.all {
            let p = sub.isEmpty ? root : root.appending(sub)
            guard (try? FileDescriptor.currentWorkingDirectory.makeDirectory(at: p, permissions: .init(rawValue: 0o755))) != nil
            else { return nil }
        }
        return root
    }

    private static func mountStack(_ root: FilePath, extra: String = "") -> Errno? {
        let data = "lowerdir=\(root.appending(StoreLayout.ProbeStack.lower2).string):\(root.appending(StoreLayout.ProbeStack.lower1).string),"
            + "upperdir=\(root.appending(StoreLayout.ProbeStack.upper).string),workdir=\(root.appending(StoreLayout.ProbeStack.work).string)" + extra
        do throws(Errno) {
            try Mounts.mount(source: "overlay", target: root.appending(StoreLayout.ProbeStack.merged), type: "overlay", data: data)
            return nil
        } catch {
            return error
        }
    }

    private static func unmountStack(_ root: FilePath) {
        try? Mounts.unmount(root.appending(StoreLayout.ProbeStack.merged), flags: .detach)
    }

    private static func probeMultipleLowers(_ scratch: FilePath) -> (ok: Bool, error: Errno?) {
        guard let root = makeStack(scratch, "multi") else { return (false, nil) }
        if let error = mountStack(root) { return (false, error) }
        unmountStack(root)
        return (true, nil)
    }

    private static func probeVolatile(_ scratch: FilePath) -> Bool {
        guard let root = makeStack(scratch, "volatile") else { return false }
        if mountStack(root, extra: ",volatile") != nil { return false }
        unmountStack(root)
        return true
    }

    private static func probeMetacopy(_ scratch: FilePath) -> Bool {
        guard let root = makeStack(scratch, "metacopy") else { return false }
        let cwd = FileDescriptor.currentWorkingDirectory
        guard let f = try? cwd.open(at: root.appending(StoreLayout.ProbeStack.lower1).appending("f"), flags: O_WRONLY | O_CREAT, permissions: 0o644)
        else { return false }
        f.closeQuietly()
        if mountStack(root, extra: ",metacopy=on") != nil { return false }
        defer { unmountStack(root) }
        guard (try? cwd.changeMode(at: root.appending(StoreLayout.ProbeStack.merged).appending("f"), permissions: .init(rawValue: 0o600))) != nil
        else { return false }
        return attribute(root.appending(StoreLayout.ProbeStack.upper).appending("f"), "trusted.overlay.metacopy") != nil
    }

    private static func probeLowerdirAppend(_ scratch: FilePath) -> Bool {
        guard let root = makeStack(scratch, "append") else { return false }
        do throws(Errno) {
            let context = try FileSystemContext(type: "overlay")
            try context.set("lowerdir+", root.appending(StoreLayout.ProbeStack.lower2).string)
            try context.set("lowerdir+", root.appending(StoreLayout.ProbeStack.lower1).string)
            try context.create()
            let mount = try context.mount(readOnly: true)
            defer { mount.closeQuietly() }
            try mount.moveMount(to: root.appending(StoreLayout.ProbeStack.merged))
            unmountStack(root)
            return true
        } catch {
            return false
        }
    }

    /// `nil` when native diff works, else why not.
    ///
    /// Two kernel behaviours break reading a layer's changes from its upper directory: a lower
    /// directory's opaque mark copied up with it, and a renamed directory becoming a
    /// `redirect` to its old lower path (the diff would show an empty new directory).
    private static func probeNativeDiff(_ scratch: FilePath) -> String? {
        guard let root = makeStack(scratch, "nativediff") else { return "the probe directories could not be made" }
        let cwd = FileDescriptor.currentWorkingDirectory
        // lower2 (bottom) has d/f; lower1 has an opaque d hiding it.
        guard (try? cwd.makeDirectory(at: root.appending(StoreLayout.ProbeStack.lower2).appending("d"))) != nil,
              let f = try? cwd.open(at: root.appending(StoreLayout.ProbeStack.lower2).appending("d/f"), flags: O_WRONLY | O_CREAT, permissions: 0o644),
              (try? cwd.makeDirectory(at: root.appending(StoreLayout.ProbeStack.lower1).appending("d"))) != nil,
              setAttribute(root.appending(StoreLayout.ProbeStack.lower1).appending("d"), "trusted.overlay.opaque", Array("y".utf8)),
              (try? cwd.makeDirectory(at: root.appending(StoreLayout.ProbeStack.lower2).appending("r"))) != nil
        else { return "the probe directories could not be made" }
        f.closeQuietly()
        if let error = mountStack(root) { return "the probe overlay did not mount (\(error))" }
        defer { unmountStack(root) }
        guard let g = try? cwd.open(at: root.appending(StoreLayout.ProbeStack.merged).appending("d/g"), flags: O_WRONLY | O_CREAT, permissions: 0o644)
        else { return "a file could not be created in the probe overlay" }
        g.closeQuietly()
        // Copying d up must not copy the lower's opaque mark (kernels before 4.8 did): the upper
        // d would then hide d's contents in every layer below, which a diff cannot express.
        if attribute(root.appending(StoreLayout.ProbeStack.upper).appending("d"), "trusted.overlay.opaque") != nil {
            return "the opaque mark is wrongly copied up (kernel before 4.8)"
        }
        do throws(Errno) {
            // A directory only a lower layer holds: renaming it needs a redirect.
            try cwd.rename(root.appending(StoreLayout.ProbeStack.merged).appending("r"), to: root.appending(StoreLayout.ProbeStack.merged).appending("e"))
        } catch .improperLink {
            return nil  // EXDEV: redirect_dir is off, renames of lower directories are refused
        } catch {
            return "renaming a directory in the probe overlay failed (\(error))"
        }
        if attribute(root.appending(StoreLayout.ProbeStack.upper).appending("e"), "trusted.overlay.redirect") != nil {
            return "redirect_dir is on"
        }
        return nil
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
