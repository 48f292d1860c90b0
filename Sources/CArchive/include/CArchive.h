#ifndef STRATA_CARCHIVE_H
#define STRATA_CARCHIVE_H

// libarchive's own headers (Debian's libarchive-dev). The functions they declare that Strata
// calls are defined in CArchive.c as forwarders that load libarchive.so.13 on first use, so a
// command that never reads or writes a tar (mount, exists, create-layer…) does not pay for
// loading libarchive and the libraries it pulls in (libxml2, ICU, nettle, liblzma…).
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>

/// Loads libarchive if it is not loaded yet. Returns 1 when it is there; otherwise 0, with the
/// loader's message copied into `message` (at most `length` bytes, NUL-terminated).
int strata_archive_load(char *message, size_t length);

#endif
