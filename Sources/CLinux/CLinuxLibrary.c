#include "CLinuxLibrary.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t strata_library_lock = PTHREAD_MUTEX_INITIALIZER;

int strata_library_load(struct strata_library *library, char *message, size_t length) {
    pthread_mutex_lock(&strata_library_lock);
    if (library->state == 0) {
        library->handle = dlopen(library->soname, RTLD_NOW | RTLD_LOCAL);
        if (library->handle != NULL) {
            library->state = 1;
        } else {
            const char *error = dlerror();
            snprintf(library->error, sizeof library->error, "%s", error ? error : library->soname);
            library->state = 2;
        }
    }
    int loaded = library->state == 1;
    if (!loaded && message != NULL && length > 0) snprintf(message, length, "%s", library->error);
    pthread_mutex_unlock(&strata_library_lock);
    return loaded;
}

void *strata_library_symbol(struct strata_library *library, const char *name) {
    char message[256];
    if (!strata_library_load(library, message, sizeof message)) {
        fprintf(stderr, "strata: %s\n", message);
        abort();
    }
    void *address = dlsym(library->handle, name);
    if (address == NULL) {
        fprintf(stderr, "strata: %s has no %s\n", library->soname, name);
        abort();
    }
    return address;
}
