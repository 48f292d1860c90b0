import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// `mount(2)` flags.
public struct MountFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }

    public static let readOnly = MountFlags(rawValue: UInt(MS_RDONLY))
    public static let noSetuid = MountFlags(rawValue: UInt(MS_NOSUID))
    public static let noDevices = MountFlags(rawValue: UInt(MS_NODEV))
    public static let noExec = MountFlags(rawValue: UInt(MS_NOEXEC))
    public static let bind = MountFlags(rawValue: UInt(MS_BIND))
    public static let remount = MountFlags(rawValue: UInt(MS_REMOUNT))
    public static let recursive = MountFlags(rawValue: UInt(MS_REC))
    public static let privatePropagation = MountFlags(rawValue: UInt(MS_PRIVATE))
    public static let sharedPropagation = MountFlags(rawValue: UInt(MS_SHARED))
}

/// `umount2(2)` flags.
public struct UnmountFlags: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Detach now, clean up when the mount is no longer busy.
    public static let detach = UnmountFlags(rawValue: Int32(MNT_DETACH))
    /// Refuse to follow a symlink at the target.
    public static let noFollow = UnmountFlags(rawValue: Int32(UMOUNT_NOFOLLOW))
}

/// The classic mount calls, by path (the target is a path the caller owns, such as `merged/`).
public enum Mounts {
    /// Mounts `source` on `target`.
    ///
    /// The corresponding C function is `mount`.
    public static func mount(
        source: String, target: FilePath, type: String?, flags: MountFlags = [], data: String? = nil
    ) throws(Errno) {
        try target.withCPath { t throws(Errno) in
            try voidSyscall { Glibc.mount(source, t, type, flags.rawValue, data) }
        }
    }

    /// Unmounts `target`.
    ///
    /// The corresponding C function is `umount2`.
    public static func unmount(_ target: FilePath, flags: UnmountFlags = []) throws(Errno) {
        try target.withCPath { t throws(Errno) in
            try voidSyscall { Glibc.umount2(t, flags.rawValue) }
        }
    }

    /// Whether `path` is the root of a mount (a bind mount of the same filesystem included).
    ///
    /// One `statx` (`STATX_ATTR_MOUNT_ROOT`, Linux 5.8) answers; older kernels, which do not
    /// report that attribute, are answered from the mount table.
    public static func isMountPoint(_ path: FilePath) -> Bool {
        do throws(Errno) {
            return try FileDescriptor.currentWorkingDirectory.isMountRoot(at: path)
        } catch .noFunction {
        } catch {
            return false
        }
        let normal = path.lexicallyNormalized().string
        return mountTable().contains { $0.mountPoint == normal }
    }

    /// One line of `/proc/self/mountinfo`.
    public struct Entry: Sendable, Hashable {
        public var mountID: Int
        /// The directory of the filesystem that is mounted here (`/` unless a bind mount of a
        /// subdirectory).
        public var root: String
        public var mountPoint: String
        public var fileSystemType: String
        public var source: String
        public var superOptions: String
    }

    /// The current process's mount table, from `/proc/self/mountinfo`.
    public static func mountTable() -> [Entry] {
        guard let fd = try? FileDescriptor.currentWorkingDirectory.open(at: "/proc/self/mountinfo", .readOnly) else { return [] }
        defer { fd.closeQuietly() }
        guard let bytes = try? fd.readToEnd() else { return [] }
        var entries: [Entry] = []
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard let dash = fields.firstIndex(of: "-"), fields.count > dash + 3, fields.count > 4 else { continue }
            entries.append(Entry(
                mountID: Int(fields[0]) ?? 0,
                root: unescape(String(fields[3])),
                mountPoint: unescape(String(fields[4])),
                fileSystemType: String(fields[dash + 1]),
                source: unescape(String(fields[dash + 2])),
                superOptions: String(fields[dash + 3])))
        }
        return entries
    }

    /// Undoes mountinfo's octal escapes (`\040` for a space).
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
