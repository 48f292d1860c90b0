import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Filesystem magic numbers Strata cares about, from `statfs(2)`'s `f_type`.
public struct FileSystemType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static let ext4 = FileSystemType(rawValue: 0xEF53)
    public static let xfs = FileSystemType(rawValue: 0x5846_5342)
    public static let btrfs = FileSystemType(rawValue: 0x9123_683E)
    public static let tmpfs = FileSystemType(rawValue: 0x0102_1994)
    public static let overlay = FileSystemType(rawValue: 0x794C_7630)
    public static let zfs = FileSystemType(rawValue: 0x2FC1_2FC1)
    public static let nfs = FileSystemType(rawValue: 0x6969)
    public static let ecryptfs = FileSystemType(rawValue: 0xF15F)
    public static let aufs = FileSystemType(rawValue: 0x6174_6673)
    public static let fuse = FileSystemType(rawValue: 0x6573_5546)
    public static let f2fs = FileSystemType(rawValue: 0xF2F5_2010)
    public static let hostfs = FileSystemType(rawValue: 0x00C0_FFEE)
    public static let ramfs = FileSystemType(rawValue: 0x8584_58F6)
    public static let v9fs = FileSystemType(rawValue: 0x0102_1997)

    private static let names: [FileSystemType: String] = [
        .ext4: "extfs", .xfs: "xfs", .btrfs: "btrfs", .tmpfs: "tmpfs", .overlay: "overlayfs",
        .zfs: "zfs", .nfs: "nfs", .ecryptfs: "ecryptfs", .aufs: "aufs", .fuse: "fuse",
        .f2fs: "f2fs", .hostfs: "hostfs", .ramfs: "ramfs", .v9fs: "v9fs",
    ]

    /// The name containers/storage prints for this filesystem (`extfs`, `xfs`, …).
    public var description: String {
        Self.names[self] ?? "<unknown 0x\(String(rawValue, radix: 16))>"
    }
}

/// What `statfs(2)` tells of a mounted filesystem.
public struct FileSystemStatus: Sendable, Hashable {
    public var type: FileSystemType
    public var blockSize: Int
    public var totalBlocks: UInt64
    public var freeBlocks: UInt64
    public var availableBlocks: UInt64
    public var totalInodes: UInt64
    public var freeInodes: UInt64
}

extension FileDescriptor {
    /// Describes the filesystem the open file lives on.
    ///
    /// The corresponding C function is `fstatfs`.
    public func fileSystemStatus() throws(Errno) -> FileSystemStatus {
        var s = statfs()
        try voidSyscall { strata_fstatfs(rawValue, &s) }
        return FileSystemStatus(s)
    }

    /// Sends an ioctl whose argument is a pointer.
    ///
    /// The corresponding C function is `ioctl`.
    public func control(_ request: UInt, _ argument: UnsafeMutableRawPointer?) throws(Errno) {
        try voidSyscall { strata_ioctl_ptr(rawValue, request, argument) }
    }
}

extension FileSystemStatus {
    init(_ s: statfs) {
        type = FileSystemType(rawValue: UInt64(UInt(bitPattern: s.f_type)) & 0xFFFF_FFFF)
        blockSize = Int(s.f_bsize)
        totalBlocks = UInt64(s.f_blocks)
        freeBlocks = UInt64(s.f_bfree)
        availableBlocks = UInt64(s.f_bavail)
        totalInodes = UInt64(s.f_files)
        freeInodes = UInt64(s.f_ffree)
    }

    /// Describes the filesystem `path` lives on.
    ///
    /// The corresponding C function is `statfs`.
    public static func of(_ path: FilePath) throws(Errno) -> FileSystemStatus {
        var s = statfs()
        try path.withCPath { p throws(Errno) in try voidSyscall { strata_statfs(p, &s) } }
        return FileSystemStatus(s)
    }
}
