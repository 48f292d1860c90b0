#!/bin/sh
# The kernel tier's guest init: PID 1 of the user-mode-linux guest that `run` boots.
#
# Stage 1 (as PID 1, on the host's root seen read-only through hostfs): mount the kernel file
# systems, load overlayfs from the UML module tree, put a tmpfs overlay over / so the guest can
# write, and chroot into it for stage 2.
# Stage 2 (in the chroot): SELinux policy (permissive), loopback up, the scratch XFS mounted with
# project quotas, then the test command; its exit status goes to the host through a writable
# hostfs mount, and the guest powers off.
#
# Everything it needs comes from its own directory (the run's work directory, which `run` passes
# as the first argument on the kernel command line, as `strata_work=`).

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

say() { echo "kernel-tier guest: $*"; }
die() {
    say "error: $*"
    [ -d "$OUT" ] && echo "$*" > "$OUT/guest-error" 2>/dev/null
    sync
    echo o > /proc/sysrq-trigger
    sleep 10
    exit 1
}

stage=${1:-1}

if [ "$stage" = 1 ]; then
    # The kernel passes unknown key=value arguments as environment variables.
    WORK=${strata_work:?strata_work= missing from the kernel command line}
    mount -t proc proc /proc || exit 1
    mount -t sysfs sysfs /sys
    mount -t tmpfs -o mode=0755,size=64m tmpfs /run || die "tmpfs on /run"
    MODULES=$(cat "$WORK/modules")
    insmod "$MODULES/kernel/fs/overlayfs/overlay.ko" || die "cannot load overlay.ko"
    mkdir -p /run/rw/upper /run/rw/work /run/root
    mount -t overlay -o lowerdir=/,upperdir=/run/rw/upper,workdir=/run/rw/work overlay /run/root \
        || die "cannot put an overlay over /"
    mount --move /proc /run/root/proc
    mount --move /sys /run/root/sys
    mount -t devtmpfs devtmpfs /run/root/dev || die "devtmpfs"
    exec chroot /run/root /bin/sh "$WORK/guest-init.sh" 2 "$WORK"
    exit 1
fi

WORK=$2
OUT=/run/strata-kernel-tier/out
mkdir -p "$OUT" /dev/shm /dev/pts
mount -t hostfs -o "$WORK/out" hostfs "$OUT" || die "cannot mount the results directory"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# A checkout under /tmp (a CI clone, say) must stay visible once /tmp is a fresh tmpfs: keep the
# host's /tmp at /run/host-tmp and bind the top directories of the working directory and of the
# command back into the new /tmp.
keep_tops=
for path in "$(cat "$WORK/cwd")" "$(head -n1 "$WORK/command")"; do
    case $path in /tmp/?*) top=${path#/tmp/}; keep_tops="$keep_tops ${top%%/*}" ;; esac
done
if [ -n "$keep_tops" ]; then
    mkdir -p /run/host-tmp && mount --bind /tmp /run/host-tmp || die "cannot keep the host's /tmp"
fi
mount -t tmpfs -o mode=1777 tmpfs /tmp
for top in $keep_tops; do
    [ -d "/tmp/$top" ] && continue
    mkdir -p "/tmp/$top" && mount --bind "/run/host-tmp/$top" "/tmp/$top" || die "cannot bind /tmp/$top"
done
mount -t devpts devpts /dev/pts 2>/dev/null
# runc (containerd's container tests) needs a cgroup hierarchy: the unified one, as on hosts.
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || say "warning: cannot mount cgroup2 on /sys/fs/cgroup"
echo 1 > /proc/sys/kernel/sysrq

# Modules tests may want: loop devices, and quota v2 (ext4 quotas).
MODULES=$(cat "$WORK/modules")
for m in drivers/block/loop fs/quota/quota_tree fs/quota/quota_v2; do
    insmod "$MODULES/kernel/$m.ko" 2>/dev/null || say "warning: cannot load $m.ko"
done

# SELinux: the kernel booted with it; load the test policy and stay permissive.
if [ -f "$WORK/selinux.policy" ]; then
    mkdir -p /sys/fs/selinux
    mount -t selinuxfs selinuxfs /sys/fs/selinux || die "cannot mount selinuxfs"
    cat "$WORK/selinux.policy" > /sys/fs/selinux/load || die "cannot load the SELinux policy"
    echo 0 > /sys/fs/selinux/enforce || die "cannot set SELinux permissive"
fi

# Foundation's Process waits on a socket that needs the loopback device.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up || die "cannot bring lo up"

# The scratch XFS with project quotas.
XFS=/run/strata-kernel-tier/xfs
mkdir -p "$XFS"
mount -t xfs -o prjquota /dev/ubda "$XFS" || die "cannot mount the scratch XFS with prjquota"
chmod 1777 "$XFS"

export STRATA_KERNEL_TIER=1
export STRATA_KERNEL_TIER_XFS="$XFS"
export TMPDIR=/dev/shm
export HOME=/root
export LANG=C.UTF-8
[ -f "$WORK/environment" ] && . "$WORK/environment"
cd "$(cat "$WORK/cwd")" 2>/dev/null || cd /

say "booted in $(cut -d' ' -f1 /proc/uptime) s; kernel $(uname -r); running the tests"
# The command, one argument a line, as written by `run` (arguments hold no newlines).
set --
while IFS= read -r arg; do set -- "$@" "$arg"; done < "$WORK/command"
"$@"
status=$?
echo "$status" > "$OUT/status"
sync
say "tests exited with status $status; powering off"
echo o > /proc/sysrq-trigger
sleep 10
