// CLinux: the Linux interfaces Swift cannot import directly.
//
// Macros that compute ioctl numbers are exported as `extern const` values, and system calls that
// glibc does not wrap (or wraps only in newer versions) are exported as `strata_*` functions that
// call `syscall(2)`. Every function returns what the kernel returns: -1 with `errno` set on error.
#ifndef STRATA_CLINUX_H
#define STRATA_CLINUX_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/file.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/dqblk_xfs.h>
#include <sys/quota.h>

// MARK: - openat2(2)

/// `struct open_how` field by field, so Swift can build one without the kernel header's layout.
int strata_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve);

extern const uint64_t STRATA_RESOLVE_NO_XDEV;
extern const uint64_t STRATA_RESOLVE_NO_MAGICLINKS;
extern const uint64_t STRATA_RESOLVE_NO_SYMLINKS;
extern const uint64_t STRATA_RESOLVE_BENEATH;
extern const uint64_t STRATA_RESOLVE_IN_ROOT;

// MARK: - renameat2(2)

int strata_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags);
extern const unsigned int STRATA_RENAME_NOREPLACE;
extern const unsigned int STRATA_RENAME_EXCHANGE;
extern const unsigned int STRATA_RENAME_WHITEOUT;

// MARK: - getdents64(2)

/// Fills `buffer` with `struct linux_dirent64` records; returns the bytes filled, 0 at the end.
long strata_getdents64(int fd, void *buffer, size_t size);

// MARK: - The new mount API

int strata_fsopen(const char *fsname, unsigned int flags);
int strata_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux);
int strata_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int strata_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags);
int strata_open_tree(int dirfd, const char *path, unsigned int flags);
/// `mount_setattr(2)` with `struct mount_attr` passed field by field.
int strata_mount_setattr(int dirfd, const char *path, unsigned int flags,
                         uint64_t attr_set, uint64_t attr_clr, uint64_t propagation, uint64_t userns_fd);

extern const unsigned int STRATA_FSOPEN_CLOEXEC;
extern const unsigned int STRATA_FSCONFIG_SET_FLAG;
extern const unsigned int STRATA_FSCONFIG_SET_STRING;
extern const unsigned int STRATA_FSCONFIG_CMD_CREATE;
extern const unsigned int STRATA_FSMOUNT_CLOEXEC;
extern const unsigned int STRATA_MOVE_MOUNT_F_EMPTY_PATH;
extern const unsigned int STRATA_OPEN_TREE_CLONE;
extern const unsigned int STRATA_OPEN_TREE_CLOEXEC;
extern const unsigned int STRATA_AT_RECURSIVE;
extern const uint64_t STRATA_MOUNT_ATTR_RDONLY;
extern const uint64_t STRATA_MOUNT_ATTR_IDMAP;

// Ownership shifting: fchmodat2, the *xattrat calls, user namespaces with maps.
#include "CLinuxOwnership.h"

// MARK: - ioctl numbers and structs

extern const unsigned long STRATA_FS_IOC_FSGETXATTR;
extern const unsigned long STRATA_FS_IOC_FSSETXATTR;
extern const unsigned int STRATA_FS_XFLAG_PROJINHERIT;

/// `ioctl(2)` with a pointer argument (Swift cannot call the variadic C function).
int strata_ioctl_ptr(int fd, unsigned long request, void *arg);

// MARK: - quotactl(2)

extern const int STRATA_Q_XGETQSTAT;
extern const int STRATA_Q_XGETQUOTA;
extern const int STRATA_Q_XSETQLIM;
extern const int STRATA_PRJQUOTA;
/// `QCMD(cmd, type)`.
int strata_qcmd(int cmd, int type);
int strata_quotactl(int cmd, const char *special, int id, void *addr);
extern const int STRATA_FS_DQUOT_VERSION;
extern const int STRATA_FS_PROJ_QUOTA;
extern const int STRATA_FS_DQ_BSOFT;
extern const int STRATA_FS_DQ_BHARD;
extern const int STRATA_FS_DQ_ISOFT;
extern const int STRATA_FS_DQ_IHARD;
extern const unsigned int STRATA_FS_QUOTA_PDQ_ACCT;
extern const unsigned int STRATA_FS_QUOTA_PDQ_ENFD;

// MARK: - Device numbers

unsigned int strata_major(dev_t dev);
unsigned int strata_minor(dev_t dev);
dev_t strata_makedev(unsigned int major, unsigned int minor);

// MARK: - Errno helpers

int strata_errno(void);



// MARK: - Misc constants and calls Swift cannot see

extern const long STRATA_UTIME_OMIT;
extern const int STRATA_AT_EMPTY_PATH;
int strata_flock(int fd, int operation);
int strata_syncfs(int fd);
int strata_statfs(const char *path, struct statfs *buf);
int strata_fstatfs(int fd, struct statfs *buf);
#endif
