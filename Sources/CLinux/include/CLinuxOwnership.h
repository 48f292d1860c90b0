// CLinux ownership shims: what an ownership shift needs and glibc does not wrap.
//
// fchmodat2 (Linux 6.6) changes a mode without following a symlink; the *xattrat calls (Linux
// 6.13) read and write extended attributes anchored on a directory descriptor; a user namespace
// with given maps is made by a short-lived child (there is no call that makes one for another
// process). Every function returns what the kernel returns: -1 with `errno` set on error.
#ifndef STRATA_CLINUX_OWNERSHIP_H
#define STRATA_CLINUX_OWNERSHIP_H

#include <stddef.h>
#include <sys/types.h>

int strata_fchmodat2(int dirfd, const char *path, mode_t mode, int flags);
long strata_listxattrat(int dirfd, const char *path, int at_flags, char *list, size_t size);
long strata_getxattrat(int dirfd, const char *path, int at_flags, const char *name, void *value, size_t size);
int strata_setxattrat(int dirfd, const char *path, int at_flags, const char *name,
                      const void *value, size_t size, int xattr_flags);

/// Whether `path` (relative to `dirfd`, never following a symlink) is the root of a mount, bind
/// mounts of the same filesystem included: 1 or 0, or -1 with `errno` set.
int strata_is_mount_root(int dirfd, const char *path);

struct stat;

/// `fstatat(dirfd, path, st, AT_SYMLINK_NOFOLLOW)` and `strata_is_mount_root` in one `statx`:
/// fills `st` and sets `*mount_root` to 1 or 0, or to -1 when the kernel does not report the
/// attribute (before Linux 5.8). Returns 0, or -1 with `errno` set.
int strata_status_and_mount_root(int dirfd, const char *path, struct stat *st, int *mount_root);

/// Makes a user namespace whose `uid_map` and `gid_map` hold `uid_map` and `gid_map` (the
/// files' text: `inside outside count` lines) and returns a descriptor of it (close-on-exec).
///
/// A child is cloned into the new namespace, its maps written from here, its
/// `/proc/<pid>/ns/user` opened, and the child reaped; the namespace lives on in the descriptor.
int strata_userns_open(const char *uid_map, const char *gid_map);

#endif
