#ifndef STRATA_CSELINUX_H
#define STRATA_CSELINUX_H

// libselinux's own headers (Debian's libselinux1-dev). The functions Strata calls are defined in
// CSELinux.c as forwarders that load libselinux.so.1 on first use: a host without SELinux, and
// a command that labels nothing, never loads it (nor its constructor, nor libpcre2).
#include <selinux/selinux.h>
#include <stddef.h>

/// Loads libselinux if it is not loaded yet. Returns 1 when it is there; otherwise 0, with the
/// loader's message copied into `message` (at most `length` bytes) when it is not NULL.
int strata_selinux_load(char *message, size_t length);

#endif
