import GraphDriver
import StrataSystem
import SystemPackage

/// Everything one overlay mount needs, typed until it is handed to the kernel: either as one
/// `mount(2)` data string (when it fits in a page) or key by key through `fsconfig(2)`.
struct OverlayMountData: Sendable, Hashable {
    /// Lower directories, uppermost first.
    var lowers: [String]
    /// The upper and work directories; `nil` for a read-only mount.
    var upper: String?
    var work: String?
    /// Overlay options (`volatile`, `metacopy=on`, `context="…"`, `redirect_dir=off`…).
    var overlayOptions: [MountOption]
    /// Generic mount flags (`ro`, `nodev`, `nosuid`, `noexec`, `noatime`…).
    var readOnly: Bool
    var noSetuid = false
    var noDevices = false
    var noExec = false
    var noAccessTime = false
    var noDirectoryAccessTime = false
    var strictAccessTime = false
    /// Detached idmapped mounts standing for lower layers (named `/proc/self/fd/<n>` in
    /// `lowers`); closed once the overlay is mounted.
    var heldDescriptors: [FileDescriptor] = []
    /// Whether only `fsconfig` can take the lowers (idmapped layers).
    var needsContext = false
    /// How the data goes to the kernel; chosen once the data is complete.
    var method = Method.classic

    /// The ways an overlay is mounted.
    enum Method: Sendable, Hashable {
        /// One `mount(2)` with absolute paths: the data fits in a page.
        case classic
        /// `fsconfig`, one `lowerdir+` per layer (idmapped lowers, or data longer than a page).
        case context
        /// One `mount(2)` with paths relative to the home, on a thread working there.
        case relative
    }

    init(lowers: [String], upper: String?, work: String?, readOnly: Bool) {
        self.lowers = lowers
        self.upper = upper
        self.work = work
        self.overlayOptions = []
        self.readOnly = readOnly
    }

    /// Sorts an option into a generic flag or an overlay option.
    mutating func add(_ option: MountOption) {
        if option.value == nil {
            switch option.name {
            case "ro": readOnly = true; return
            case "rw": readOnly = false; return
            case "nosuid": noSetuid = true; return
            case "nodev": noDevices = true; return
            case "noexec": noExec = true; return
            case "noatime": noAccessTime = true; return
            case "nodiratime": noDirectoryAccessTime = true; return
            case "strictatime": strictAccessTime = true; return
            case "relatime", "suid", "dev", "exec", "atime", "diratime": return
            default: break
            }
        }
        overlayOptions.removeAll { $0.name == option.name }
        overlayOptions.append(option)
    }

    /// The `mount(2)` data string.
    var dataString: String {
        var parts = ["lowerdir=" + lowers.joined(separator: ":")]
        if let upper, let work {
            parts.append("upperdir=" + upper)
            parts.append("workdir=" + work)
        }
        parts += overlayOptions.map(\.description)
        return parts.joined(separator: ",")
    }

    /// Whether the data string fits in the page `mount(2)` reads.
    var fitsInPage: Bool { dataString.utf8.count < systemPageSize }

    var mountFlags: MountFlags {
        var flags: MountFlags = []
        if readOnly { flags.insert(.readOnly) }
        if noSetuid { flags.insert(.noSetuid) }
        if noDevices { flags.insert(.noDevices) }
        if noExec { flags.insert(.noExec) }
        if noAccessTime { flags.insert(MountFlags(rawValue: 1024)) }  // MS_NOATIME
        if noDirectoryAccessTime { flags.insert(MountFlags(rawValue: 2048)) }  // MS_NODIRATIME
        if strictAccessTime { flags.insert(MountFlags(rawValue: 1 << 24)) }  // MS_STRICTATIME
        return flags
    }

    var attributes: MountAttributes {
        var attributes: MountAttributes = []
        if readOnly { attributes.insert(.readOnly) }
        if noSetuid { attributes.insert(.noSetuid) }
        if noDevices { attributes.insert(.noDevices) }
        if noExec { attributes.insert(.noExec) }
        if noAccessTime { attributes.insert(.noAccessTime) }
        if noDirectoryAccessTime { attributes.insert(.noDirectoryAccessTime) }
        if strictAccessTime { attributes.insert(.strictAccessTime) }
        return attributes
    }

    /// The same data with every path relative to `directory` (`l/<short>`, `<id>/diff`), when
    /// all of them lie inside it: how containers/storage fits 128 layers in a page.
    func relative(to directory: String) -> OverlayMountData? {
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        func strip(_ path: String) -> String? { path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : nil }
        var copy = self
        var lowers: [String] = []
        for lower in self.lowers {
            guard let short = strip(lower) else { return nil }
            lowers.append(short)
        }
        copy.lowers = lowers
        if let upper, let work {
            guard let u = strip(upper), let w = strip(work) else { return nil }
            copy.upper = u
            copy.work = w
        }
        return copy
    }

    /// Mounts with `mount(2)` and paths relative to `directory`, resolved on a thread of its own
    /// whose working directory is `directory` (the process's stays where it is).
    func mountRelative(in directory: FileDescriptor, at target: FilePath) throws(Errno) {
        let data = dataString
        let flags = mountFlags
        let targetPath = target.string
        try ThreadWorkingDirectory.run(in: directory) {
            do throws(Errno) {
                try Mounts.mount(source: "overlay", target: FilePath(targetPath), type: "overlay", flags: flags, data: data)
                return nil
            } catch {
                return error
            }
        }
    }

    /// Mounts with `mount(2)`.
    func mountClassic(at target: FilePath) throws(Errno) {
        try Mounts.mount(source: "overlay", target: target, type: "overlay", flags: mountFlags, data: dataString)
    }

    /// Mounts through a filesystem context, one `lowerdir+` per layer, so that the number of
    /// layers is bounded by the kernel's stack limit, not by the page size.
    func mountWithContext(at target: FilePath) throws(Errno) {
        let context = try FileSystemContext(type: "overlay")
        try context.set("source", "overlay")
        for lower in lowers {
            try context.set("lowerdir+", lower)
        }
        if let upper, let work {
            try context.set("upperdir", upper)
            try context.set("workdir", work)
        }
        for option in overlayOptions {
            if var value = option.value {
                // `mount(2)` data quotes values holding commas (`context="…"`); fsconfig takes them bare.
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                try context.set(option.name, value)
            } else {
                try context.set(flag: option.name)
            }
        }
        try context.create()
        let mount = try context.mount(attributes: attributes)
        defer { mount.closeQuietly() }
        try mount.moveMount(to: target)
    }
}
