// Forwarders for the libarchive functions Strata calls: libarchive.so.13 is opened with dlopen
// the first time one of them runs (or when strata_archive_load asks), and each function's
// address is looked up once (CLinux's CLinuxLibrary.h). The same pattern as systemd's dlopen of
// optional libraries; it keeps libarchive and its dependencies out of the start-up of commands
// that never touch a tar.
//
// Each line below must match the declaration in <archive.h> or <archive_entry.h>: the compiler
// rejects a forwarder whose type differs. A libarchive function newly used from Swift needs a
// line here (the link fails with an undefined symbol otherwise).

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <wchar.h>

#include "CLinuxLibrary.h"

// libarchive's declarations (and only those: the system headers above are already in) are made
// hidden, so that the executable does not export these names: libarchive's own calls to its
// functions must reach libarchive, not these forwarders.
#pragma GCC visibility push(hidden)
#include "CArchive.h"
#pragma GCC visibility pop

static struct strata_library libarchive = STRATA_LIBRARY("libarchive.so.13");

int strata_archive_load(char *message, size_t length) {
    return strata_library_load(&libarchive, message, length);
}

#define STRATA_ARCHIVE(type, name, parameters, arguments) STRATA_FORWARD(libarchive, type, name, parameters, arguments)
#define STRATA_ARCHIVE_VOID(name, parameters, arguments) STRATA_FORWARD_VOID(libarchive, name, parameters, arguments)

STRATA_ARCHIVE(int, archive_entry_acl_add_entry, (struct archive_entry *a0, int a1, int a2, int a3, int a4, const char *a5), (a0, a1, a2, a3, a4, a5))
STRATA_ARCHIVE(int, archive_entry_acl_count, (struct archive_entry *a0, int a1), (a0, a1))
STRATA_ARCHIVE(int, archive_entry_acl_next, (struct archive_entry *a0, int a1, int *a2, int *a3, int *a4, int *a5, const char **a6), (a0, a1, a2, a3, a4, a5, a6))
STRATA_ARCHIVE(int, archive_entry_acl_reset, (struct archive_entry *a0, int a1), (a0, a1))
STRATA_ARCHIVE(time_t, archive_entry_atime, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(int, archive_entry_atime_is_set, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(long, archive_entry_atime_nsec, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(struct archive_entry *, archive_entry_clear, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE_VOID(archive_entry_copy_hardlink, (struct archive_entry *a0, const char *a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_copy_pathname, (struct archive_entry *a0, const char *a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_copy_symlink, (struct archive_entry *a0, const char *a1), (a0, a1))
STRATA_ARCHIVE(__LA_MODE_T, archive_entry_filetype, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE_VOID(archive_entry_free, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(la_int64_t, archive_entry_gid, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(const char *, archive_entry_hardlink, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(__LA_MODE_T, archive_entry_mode, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(time_t, archive_entry_mtime, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(long, archive_entry_mtime_nsec, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(struct archive_entry *, archive_entry_new, (void), ())
STRATA_ARCHIVE(const char *, archive_entry_pathname, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(__LA_MODE_T, archive_entry_perm, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(dev_t, archive_entry_rdevmajor, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(dev_t, archive_entry_rdevminor, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE_VOID(archive_entry_set_filetype, (struct archive_entry *a0, unsigned int a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_gid, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_mtime, (struct archive_entry *a0, time_t a1, long a2), (a0, a1, a2))
STRATA_ARCHIVE_VOID(archive_entry_set_perm, (struct archive_entry *a0, __LA_MODE_T a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_rdevmajor, (struct archive_entry *a0, dev_t a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_rdevminor, (struct archive_entry *a0, dev_t a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_size, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
STRATA_ARCHIVE_VOID(archive_entry_set_uid, (struct archive_entry *a0, la_int64_t a1), (a0, a1))
STRATA_ARCHIVE(la_int64_t, archive_entry_size, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(int, archive_entry_size_is_set, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(const char *, archive_entry_symlink, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(la_int64_t, archive_entry_uid, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE_VOID(archive_entry_xattr_add_entry, (struct archive_entry *a0, const char *a1, const void *a2, size_t a3), (a0, a1, a2, a3))
STRATA_ARCHIVE(int, archive_entry_xattr_next, (struct archive_entry *a0, const char **a1, const void **a2, size_t *a3), (a0, a1, a2, a3))
STRATA_ARCHIVE(int, archive_entry_xattr_reset, (struct archive_entry *a0), (a0))
STRATA_ARCHIVE(int, archive_errno, (struct archive *a0), (a0))
STRATA_ARCHIVE(const char *, archive_error_string, (struct archive *a0), (a0))
STRATA_ARCHIVE(la_int64_t, archive_filter_bytes, (struct archive *a0, int a1), (a0, a1))
STRATA_ARCHIVE(int, archive_filter_code, (struct archive *a0, int a1), (a0, a1))
STRATA_ARCHIVE(la_ssize_t, archive_read_data, (struct archive *a0, void *a1, size_t a2), (a0, a1, a2))
STRATA_ARCHIVE(int, archive_read_data_block, (struct archive *a0, const void **a1, size_t *a2, la_int64_t *a3), (a0, a1, a2, a3))
STRATA_ARCHIVE(int, archive_read_data_skip, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_free, (struct archive *a0), (a0))
STRATA_ARCHIVE(la_int64_t, archive_read_header_position, (struct archive *a0), (a0))
STRATA_ARCHIVE(struct archive *, archive_read_new, (void), ())
STRATA_ARCHIVE(int, archive_read_next_header, (struct archive *a0, struct archive_entry **a1), (a0, a1))
STRATA_ARCHIVE(int, archive_read_next_header2, (struct archive *a0, struct archive_entry *a1), (a0, a1))
STRATA_ARCHIVE(int, archive_read_open_fd, (struct archive *a0, int a1, size_t a2), (a0, a1, a2))
STRATA_ARCHIVE(int, archive_read_open_memory, (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2))
STRATA_ARCHIVE(int, archive_read_support_filter_all, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_filter_gzip, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_filter_none, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_filter_zstd, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_format_all, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_format_raw, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_read_support_format_tar, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_write_add_filter_gzip, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_write_add_filter_zstd, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_write_close, (struct archive *a0), (a0))
STRATA_ARCHIVE(la_ssize_t, archive_write_data, (struct archive *a0, const void *a1, size_t a2), (a0, a1, a2))
STRATA_ARCHIVE(int, archive_write_free, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_write_header, (struct archive *a0, struct archive_entry *a1), (a0, a1))
STRATA_ARCHIVE(struct archive *, archive_write_new, (void), ())
STRATA_ARCHIVE(int, archive_write_open2, (struct archive *a0, void *a1, archive_open_callback *a2, archive_write_callback *a3, archive_close_callback *a4, archive_free_callback *a5), (a0, a1, a2, a3, a4, a5))
STRATA_ARCHIVE(int, archive_write_set_bytes_in_last_block, (struct archive *a0, int a1), (a0, a1))
STRATA_ARCHIVE(int, archive_write_set_bytes_per_block, (struct archive *a0, int a1), (a0, a1))
STRATA_ARCHIVE(int, archive_write_set_format_pax, (struct archive *a0), (a0))
STRATA_ARCHIVE(int, archive_write_set_options, (struct archive *a0, const char *a1), (a0, a1))
