#include <selinux/selinux.h>
#include <selinux/context.h>
#include <selinux/label.h>
