#ifndef STRATA_CLINUX_LIBRARY_H
#define STRATA_CLINUX_LIBRARY_H

// Loading an optional shared library on first use (dlopen), for the forwarders in CArchive and
// CSELinux: a command that never needs the library does not pay for loading it at start-up.

#include <stddef.h>

/// A library opened on first use: its soname, and (set by strata_library_load) its handle or
/// the loader's message. Initialize with STRATA_LIBRARY("libname.so.N").
struct strata_library {
    const char *soname;
    int state;               // 0 not tried, 1 loaded, 2 failed (read and written under a lock)
    void *handle;
    char error[256];
};
#define STRATA_LIBRARY(soname) { soname, 0, 0, { 0 } }

/// Loads the library if that was not tried yet. Returns 1 when it is loaded; otherwise 0, with
/// the loader's message copied into `message` (at most `length` bytes) when it is not NULL.
int strata_library_load(struct strata_library *library, char *message, size_t length);

/// The address of `name` in the library, loading it first. A caller checks strata_library_load
/// before (and turns a failure into an error); reaching here without the library, or without
/// the symbol, cannot be reported any other way, so it ends the process with the message.
void *strata_library_symbol(struct strata_library *library, const char *name);

/// Defines `name` with `parameters` to call the library's own `name` with `arguments`; the
/// function's address is looked up once. Its type is checked against the library header's
/// declaration of `name`, which must be in scope.
#define STRATA_FORWARD_RESOLVE(library, name)                                             \
    static __typeof__(&name) resolved;                                                    \
    __typeof__(&name) function = __atomic_load_n(&resolved, __ATOMIC_ACQUIRE);            \
    if (function == NULL) {                                                               \
        function = (__typeof__(&name))strata_library_symbol(&(library), #name);           \
        __atomic_store_n(&resolved, function, __ATOMIC_RELEASE);                          \
    }
#define STRATA_FORWARD(library, type, name, parameters, arguments)                        \
    type name parameters {                                                                \
        STRATA_FORWARD_RESOLVE(library, name)                                             \
        return function arguments;                                                        \
    }
#define STRATA_FORWARD_VOID(library, name, parameters, arguments)                         \
    void name parameters {                                                                \
        STRATA_FORWARD_RESOLVE(library, name)                                             \
        function arguments;                                                               \
    }

#endif
