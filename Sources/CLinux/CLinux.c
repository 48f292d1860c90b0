#define _GNU_SOURCE
#include "CLinux.h"
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <linux/mount.h>

int strata_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
    struct open_how how = { .flags = flags, .mode = mode, .resolve = resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

const uint64_t STRATA_RESOLVE_NO_XDEV = RESOLVE_NO_XDEV;
const uint64_t STRATA_RESOLVE_NO_MAGICLINKS = RESOLVE_NO_MAGICLINKS;
const uint64_t STRATA_RESOLVE_NO_SYMLINKS = RESOLVE_NO_SYMLINKS;
const uint64_t STRATA_RESOLVE_BENEATH = RESOLVE_BENEATH;
const uint64_t STRATA_RESOLVE_IN_ROOT = RESOLVE_IN_ROOT;

int strata_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}
const unsigned int STRATA_RENAME_NOREPLACE = RENAME_NOREPLACE;
const unsigned int STRATA_RENAME_EXCHANGE = RENAME_EXCHANGE;
const unsigned int STRATA_RENAME_WHITEOUT = RENAME_WHITEOUT;

long strata_getdents64(int fd, void *buffer, size_t size) {
    return syscall(SYS_getdents64, fd, buffer, size);
}

int strata_fsopen(const char *fsname, unsigned int flags) {
    return (int)syscall(SYS_fsopen, fsname, flags);
}
int strata_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux) {
    return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
int strata_fsmount(int fd, unsigned int flags, unsigned int attr_flags) {
    return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}
int strata_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags) {
    return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags);
}
int strata_open_tree(int dirfd, const char *path, unsigned int flags) {
    return (int)syscall(SYS_open_tree, dirfd, path, flags);
}
int strata_mount_setattr(int dirfd, const char *path, unsigned int flags,
                         uint64_t attr_set, uint64_t attr_clr, uint64_t propagation, uint64_t userns_fd) {
    struct mount_attr attr = {
        .attr_set = attr_set, .attr_clr = attr_clr, .propagation = propagation, .userns_fd = userns_fd,
    };
    return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr, sizeof(attr));
}

const unsigned int STRATA_FSOPEN_CLOEXEC = FSOPEN_CLOEXEC;
const unsigned int STRATA_FSCONFIG_SET_FLAG = FSCONFIG_SET_FLAG;
const unsigned int STRATA_FSCONFIG_SET_STRING = FSCONFIG_SET_STRING;
const unsigned int STRATA_FSCONFIG_CMD_CREATE = FSCONFIG_CMD_CREATE;
const unsigned int STRATA_FSMOUNT_CLOEXEC = FSMOUNT_CLOEXEC;
const unsigned int STRATA_MOVE_MOUNT_F_EMPTY_PATH = MOVE_MOUNT_F_EMPTY_PATH;
const unsigned int STRATA_OPEN_TREE_CLONE = OPEN_TREE_CLONE;
const unsigned int STRATA_OPEN_TREE_CLOEXEC = OPEN_TREE_CLOEXEC;
const unsigned int STRATA_AT_RECURSIVE = AT_RECURSIVE;
const uint64_t STRATA_MOUNT_ATTR_RDONLY = MOUNT_ATTR_RDONLY;
const uint64_t STRATA_MOUNT_ATTR_IDMAP = MOUNT_ATTR_IDMAP;

const unsigned long STRATA_FS_IOC_FSGETXATTR = FS_IOC_FSGETXATTR;
const unsigned long STRATA_FS_IOC_FSSETXATTR = FS_IOC_FSSETXATTR;
const unsigned int STRATA_FS_XFLAG_PROJINHERIT = FS_XFLAG_PROJINHERIT;

int strata_ioctl_ptr(int fd, unsigned long request, void *arg) {
    return ioctl(fd, request, arg);
}

const int STRATA_Q_XGETQSTAT = Q_XGETQSTAT;
const int STRATA_Q_XGETQUOTA = Q_XGETQUOTA;
const int STRATA_Q_XSETQLIM = Q_XSETQLIM;
const int STRATA_PRJQUOTA = PRJQUOTA;
int strata_qcmd(int cmd, int type) { return QCMD(cmd, type); }
int strata_quotactl(int cmd, const char *special, int id, void *addr) {
    return quotactl(cmd, special, id, (caddr_t)addr);
}

unsigned int strata_major(dev_t dev) { return major(dev); }
unsigned int strata_minor(dev_t dev) { return minor(dev); }
dev_t strata_makedev(unsigned int ma, unsigned int mi) { return makedev(ma, mi); }

int strata_errno(void) { return errno; }

const long STRATA_UTIME_OMIT = UTIME_OMIT;
const int STRATA_AT_EMPTY_PATH = AT_EMPTY_PATH;
int strata_flock(int fd, int operation) { return flock(fd, operation); }
int strata_statfs(const char *path, struct statfs *buf) { return statfs(path, buf); }
int strata_fstatfs(int fd, struct statfs *buf) { return fstatfs(fd, buf); }

const int STRATA_FS_DQUOT_VERSION = FS_DQUOT_VERSION;
const int STRATA_FS_PROJ_QUOTA = FS_PROJ_QUOTA;
const int STRATA_FS_DQ_BSOFT = FS_DQ_BSOFT;
const int STRATA_FS_DQ_BHARD = FS_DQ_BHARD;
const int STRATA_FS_DQ_ISOFT = FS_DQ_ISOFT;
const int STRATA_FS_DQ_IHARD = FS_DQ_IHARD;
const unsigned int STRATA_FS_QUOTA_PDQ_ACCT = FS_QUOTA_PDQ_ACCT;
const unsigned int STRATA_FS_QUOTA_PDQ_ENFD = FS_QUOTA_PDQ_ENFD;
int strata_syncfs(int fd) { return syncfs(fd); }
