#include <sys/types.h>
#include <sys/xattr.h>
#include <attr/libattr.h>
