// Forwarders for the libselinux functions Strata calls (see CArchive.c for the pattern): each
// must match its declaration in <selinux/selinux.h>, which the compiler checks.

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "CLinuxLibrary.h"

// Hidden: libselinux's own calls to these names must reach libselinux, not the forwarders.
#pragma GCC visibility push(hidden)
#include "CSELinux.h"
#pragma GCC visibility pop

static struct strata_library libselinux = STRATA_LIBRARY("libselinux.so.1");

int strata_selinux_load(char *message, size_t length) {
    return strata_library_load(&libselinux, message, length);
}

STRATA_FORWARD(libselinux, int, is_selinux_enabled, (void), ())
STRATA_FORWARD(libselinux, int, security_check_context, (const char *context), (context))
STRATA_FORWARD(libselinux, int, lgetfilecon, (const char *path, char **context), (path, context))
STRATA_FORWARD(libselinux, int, lsetfilecon, (const char *path, const char *context), (path, context))
STRATA_FORWARD_VOID(libselinux, freecon, (char *context), (context))
STRATA_FORWARD(libselinux, int, security_get_initial_context_raw, (const char *name, char **context), (name, context))
