import CLinux
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What the kernel reports of a filesystem's project quotas.
public struct ProjectQuotaState: Sendable, Hashable {
    /// Usage is being counted.
    public var accounting: Bool
    /// Limits are being enforced.
    public var enforcing: Bool
}

/// One project's limits and usage, in bytes and inodes (0 means no limit).
public struct ProjectQuotaRecord: Sendable, Hashable {
    public var byteLimit: UInt64
    public var inodeLimit: UInt64
    public var bytesUsed: UInt64
    public var inodesUsed: UInt64
}

/// Project quota calls on the filesystem behind a block device node, through `quotactl(2)`'s
/// XFS interface (which the kernel also serves for ext4 with `prjquota`).
public enum ProjectQuotaCalls {
    /// Whether project quota accounting and enforcement are on.
    ///
    /// The corresponding C function is `quotactl` with `Q_XGETQSTAT`.
    public static func state(device: FilePath) throws(Errno) -> ProjectQuotaState {
        var stat = fs_quota_stat()
        try device.withCPath { d throws(Errno) in
            try voidSyscall { strata_quotactl(strata_qcmd(STRATA_Q_XGETQSTAT, STRATA_PRJQUOTA), d, 0, &stat) }
        }
        let flags = UInt32(stat.qs_flags)
        return ProjectQuotaState(accounting: flags & STRATA_FS_QUOTA_PDQ_ACCT != 0,
                                 enforcing: flags & STRATA_FS_QUOTA_PDQ_ENFD != 0)
    }

    /// Sets a project's byte and inode limits (soft = hard); every field is sent, so a reused
    /// project ID never keeps an old limit. Bytes are rounded up to 512-byte blocks.
    ///
    /// The corresponding C function is `quotactl` with `Q_XSETQLIM`.
    public static func setLimits(device: FilePath, project: UInt32, bytes: UInt64, inodes: UInt64) throws(Errno) {
        var quota = fs_disk_quota()
        quota.d_version = Int8(STRATA_FS_DQUOT_VERSION)
        quota.d_flags = Int8(STRATA_FS_PROJ_QUOTA)
        quota.d_id = project
        quota.d_fieldmask = UInt16(STRATA_FS_DQ_BSOFT | STRATA_FS_DQ_BHARD | STRATA_FS_DQ_ISOFT | STRATA_FS_DQ_IHARD)
        let blocks = (bytes + 511) / 512
        quota.d_blk_hardlimit = blocks
        quota.d_blk_softlimit = blocks
        quota.d_ino_hardlimit = inodes
        quota.d_ino_softlimit = inodes
        try device.withCPath { d throws(Errno) in
            try voidSyscall { strata_quotactl(strata_qcmd(STRATA_Q_XSETQLIM, STRATA_PRJQUOTA), d, Int32(bitPattern: project), &quota) }
        }
    }

    /// Reads a project's limits and usage.
    ///
    /// The corresponding C function is `quotactl` with `Q_XGETQUOTA`.
    public static func record(device: FilePath, project: UInt32) throws(Errno) -> ProjectQuotaRecord {
        var quota = fs_disk_quota()
        try device.withCPath { d throws(Errno) in
            try voidSyscall { strata_quotactl(strata_qcmd(STRATA_Q_XGETQUOTA, STRATA_PRJQUOTA), d, Int32(bitPattern: project), &quota) }
        }
        return ProjectQuotaRecord(byteLimit: quota.d_blk_hardlimit * 512, inodeLimit: quota.d_ino_hardlimit,
                                  bytesUsed: quota.d_bcount * 512, inodesUsed: quota.d_icount)
    }
}
