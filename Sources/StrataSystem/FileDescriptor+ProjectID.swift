import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The inode attributes `FS_IOC_FSGETXATTR` reads: the extended flags and the project ID that
/// project quotas charge a file to.
public struct InodeAttributes: Sendable, Hashable {
    /// `fsx_xflags` (`FS_XFLAG_*`).
    public var flags: UInt32
    /// `fsx_projid`: the quota project the inode belongs to (0 when none).
    public var projectID: UInt32
    /// `fsx_extsize`, `fsx_nextents`, `fsx_cowextsize`: kept so a set writes back what it read.
    var extentSize: UInt32
    var cowExtentSize: UInt32

    /// `FS_XFLAG_PROJINHERIT`: new files in this directory take its project ID.
    public static let projectInherit = UInt32(STRATA_FS_XFLAG_PROJINHERIT)

    /// Whether new entries inherit the project ID.
    public var inheritsProject: Bool {
        get { flags & Self.projectInherit != 0 }
        set { flags = newValue ? flags | Self.projectInherit : flags & ~Self.projectInherit }
    }
}

extension FileDescriptor {
    /// Reads the inode's extended attributes and project ID.
    ///
    /// The corresponding C function is `ioctl` with `FS_IOC_FSGETXATTR`.
    public func inodeAttributes() throws(Errno) -> InodeAttributes {
        var raw = fsxattr()
        try control(UInt(STRATA_FS_IOC_FSGETXATTR), &raw)
        return InodeAttributes(flags: raw.fsx_xflags, projectID: raw.fsx_projid,
                               extentSize: raw.fsx_extsize, cowExtentSize: raw.fsx_cowextsize)
    }

    /// Writes the inode's extended flags and project ID.
    ///
    /// The corresponding C function is `ioctl` with `FS_IOC_FSSETXATTR`.
    public func setInodeAttributes(_ attributes: InodeAttributes) throws(Errno) {
        var raw = fsxattr()
        raw.fsx_xflags = attributes.flags
        raw.fsx_projid = attributes.projectID
        raw.fsx_extsize = attributes.extentSize
        raw.fsx_cowextsize = attributes.cowExtentSize
        try control(UInt(STRATA_FS_IOC_FSSETXATTR), &raw)
    }
}
