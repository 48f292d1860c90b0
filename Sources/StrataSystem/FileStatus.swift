import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The kind of a file, as the mode bits or a directory entry tell it.
public enum FileKind: Sendable, Hashable, CustomStringConvertible {
    case regular, directory, symlink, characterDevice, blockDevice, fifo, socket, unknown

    /// The kind that the `S_IFMT` bits of `mode` name.
    public init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symlink
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        default: self = .unknown
        }
    }

    /// The kind that a directory entry's `d_type` names (`.unknown` when the filesystem does not say).
    public init(directoryEntryType type: UInt8) {
        switch Int32(type) {
        case Int32(DT_REG): self = .regular
        case Int32(DT_DIR): self = .directory
        case Int32(DT_LNK): self = .symlink
        case Int32(DT_CHR): self = .characterDevice
        case Int32(DT_BLK): self = .blockDevice
        case Int32(DT_FIFO): self = .fifo
        case Int32(DT_SOCK): self = .socket
        default: self = .unknown
        }
    }

    /// The `S_IFMT` bits for this kind (0 for `.unknown`).
    public var modeBits: mode_t {
        switch self {
        case .regular: S_IFREG
        case .directory: S_IFDIR
        case .symlink: S_IFLNK
        case .characterDevice: S_IFCHR
        case .blockDevice: S_IFBLK
        case .fifo: S_IFIFO
        case .socket: S_IFSOCK
        case .unknown: 0
        }
    }

    public var description: String {
        switch self {
        case .regular: "regular file"
        case .directory: "directory"
        case .symlink: "symbolic link"
        case .characterDevice: "character device"
        case .blockDevice: "block device"
        case .fifo: "FIFO"
        case .socket: "socket"
        case .unknown: "unknown"
        }
    }
}

/// A point in time with nanoseconds, as the kernel stores file times.
public struct FileTime: Sendable, Hashable, Comparable {
    public var seconds: Int64
    public var nanoseconds: Int64

    public init(seconds: Int64, nanoseconds: Int64 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public init(_ spec: timespec) {
        self.init(seconds: Int64(spec.tv_sec), nanoseconds: Int64(spec.tv_nsec))
    }

    /// The value as a `timespec`.
    public var timespec: Glibc.timespec {
        Glibc.timespec(tv_sec: Int(seconds), tv_nsec: Int(nanoseconds))
    }

    /// The `UTIME_OMIT` marker: leave this time unchanged.
    public static let omit = FileTime(seconds: 0, nanoseconds: Int64(STRATA_UTIME_OMIT))

    public static func < (lhs: FileTime, rhs: FileTime) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }
}

/// What `fstatat(2)` tells of a file.
public struct FileStatus: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64
    public var mode: mode_t
    public var linkCount: UInt64
    public var userID: UserID
    public var groupID: GroupID
    public var specialDevice: UInt64
    public var size: Int64
    public var blocks: Int64
    public var accessTime: FileTime
    public var modificationTime: FileTime
    public var changeTime: FileTime

    public init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        mode = st.st_mode
        linkCount = UInt64(st.st_nlink)
        userID = UserID(rawValue: st.st_uid)
        groupID = GroupID(rawValue: st.st_gid)
        specialDevice = UInt64(st.st_rdev)
        size = Int64(st.st_size)
        blocks = Int64(st.st_blocks)
        accessTime = FileTime(st.st_atim)
        modificationTime = FileTime(st.st_mtim)
        changeTime = FileTime(st.st_ctim)
    }

    /// The kind of file.
    public var kind: FileKind { FileKind(mode: mode) }

    /// The permission bits, with setuid, setgid and sticky.
    public var permissions: FilePermissions { FilePermissions(rawValue: CModeT(mode & 0o7777)) }

    /// The major number of a device file.
    public var deviceMajor: UInt32 { strata_major(dev_t(specialDevice)) }

    /// The minor number of a device file.
    public var deviceMinor: UInt32 { strata_minor(dev_t(specialDevice)) }
}

/// Builds a device number from its major and minor parts.
public func makeDeviceNumber(major: UInt32, minor: UInt32) -> UInt64 {
    UInt64(strata_makedev(major, minor))
}
