#define _GNU_SOURCE
#include "CLinuxOwnership.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

// The numbers are the same on every architecture for calls this new.
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_setxattrat
#define SYS_setxattrat 463
#endif
#ifndef SYS_getxattrat
#define SYS_getxattrat 464
#endif
#ifndef SYS_listxattrat
#define SYS_listxattrat 465
#endif

/// `struct xattr_args` of the *xattrat calls.
struct strata_xattr_args {
    uint64_t value;
    uint32_t size;
    uint32_t flags;
};

int strata_fchmodat2(int dirfd, const char *path, mode_t mode, int flags) {
    return (int)syscall(SYS_fchmodat2, dirfd, path, mode, flags);
}

long strata_listxattrat(int dirfd, const char *path, int at_flags, char *list, size_t size) {
    return syscall(SYS_listxattrat, dirfd, path, at_flags, list, size);
}

long strata_getxattrat(int dirfd, const char *path, int at_flags, const char *name, void *value, size_t size) {
    struct strata_xattr_args args = { .value = (uint64_t)(uintptr_t)value, .size = (uint32_t)size, .flags = 0 };
    return syscall(SYS_getxattrat, dirfd, path, at_flags, name, &args, sizeof(args));
}

int strata_setxattrat(int dirfd, const char *path, int at_flags, const char *name,
                      const void *value, size_t size, int xattr_flags) {
    struct strata_xattr_args args = {
        .value = (uint64_t)(uintptr_t)value, .size = (uint32_t)size, .flags = (uint32_t)xattr_flags,
    };
    return (int)syscall(SYS_setxattrat, dirfd, path, at_flags, name, &args, sizeof(args));
}

#ifndef SYS_close_range
#define SYS_close_range 436
#endif

int strata_is_mount_root(int dirfd, const char *path) {
    struct statx st;
    if (statx(dirfd, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &st) < 0) return -1;
    if (!(st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
        errno = ENOSYS;
        return -1;
    }
    return (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? 1 : 0;
}

int strata_status_and_mount_root(int dirfd, const char *path, struct stat *st, int *mount_root) {
    struct statx stx;
    if (statx(dirfd, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) < 0) return -1;
    memset(st, 0, sizeof(*st));
    st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    st->st_ino = stx.stx_ino;
    st->st_mode = stx.stx_mode;
    st->st_nlink = stx.stx_nlink;
    st->st_uid = stx.stx_uid;
    st->st_gid = stx.stx_gid;
    st->st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
    st->st_size = (off_t)stx.stx_size;
    st->st_blksize = (blksize_t)stx.stx_blksize;
    st->st_blocks = (blkcnt_t)stx.stx_blocks;
    st->st_atim.tv_sec = stx.stx_atime.tv_sec;
    st->st_atim.tv_nsec = stx.stx_atime.tv_nsec;
    st->st_mtim.tv_sec = stx.stx_mtime.tv_sec;
    st->st_mtim.tv_nsec = stx.stx_mtime.tv_nsec;
    st->st_ctim.tv_sec = stx.stx_ctime.tv_sec;
    st->st_ctim.tv_nsec = stx.stx_ctime.tv_nsec;
    if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) {
        *mount_root = (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) ? 1 : 0;
    } else {
        *mount_root = -1;
    }
    return 0;
}

// The child only closes, reads and exits: nothing that a copy of a multithreaded process may not do.
// It closes every descriptor but the pipe's read end first, so that its copies never keep the
// host's files open or its mounts busy while it lives.
static int userns_child(void *arg) {
    int *fds = arg;
    char byte;
    if (fds[0] > 0) syscall(SYS_close_range, 0U, (unsigned int)fds[0] - 1, 0U);
    syscall(SYS_close_range, (unsigned int)fds[0] + 1, ~0U, 0U);
    while (read(fds[0], &byte, 1) < 0 && errno == EINTR) {}
    _exit(0);
}

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t length = strlen(text);
    ssize_t written;
    do { written = write(fd, text, length); } while (written < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (written < 0) { errno = saved; return -1; }
    if ((size_t)written != length) { errno = EIO; return -1; }
    return 0;
}

int strata_userns_open(const char *uid_map, const char *gid_map) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return -1;
    const size_t stack_size = 64 * 1024;
    void *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int saved = errno;
        close(fds[0]); close(fds[1]);
        errno = saved;
        return -1;
    }
    // No exit signal: the host's SIGCHLD handling (and any waitpid(-1) reaper) never sees this
    // child; it is reaped below with __WALL.
    pid_t pid = clone(userns_child, (char *)stack + stack_size, CLONE_NEWUSER, fds);
    int saved = errno;
    munmap(stack, stack_size);  // the child runs on its own copy
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        errno = saved;
        return -1;
    }
    char path[64];
    int result = -1;
    snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
    if (write_file(path, uid_map) == 0) {
        snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
        if (write_file(path, gid_map) == 0) {
            snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
            result = open(path, O_RDONLY | O_CLOEXEC);
        }
    }
    saved = errno;
    close(fds[1]);  // the child's read returns 0 and it exits
    while (waitpid(pid, NULL, __WALL) < 0 && errno == EINTR) {}
    errno = saved;
    return result;
}
