#!/bin/sh
# Writes an interop fixture: a layer directory holding every kind of entry a layer can carry.
#
#   make-layer-tree.sh lower DIR   the layer below: paths the upper deletes or makes opaque
#   make-layer-tree.sh upper DIR   the layer above, in overlay form: files of every kind, owners,
#                                  odd modes, xattrs, a capability, ACLs, hardlinks, devices,
#                                  whiteouts (char 0/0), an opaque directory over a lower one
#                                  and an opaque directory with no lower one (fresh-opq)
#   make-layer-tree.sh merged DIR  the same changes made through a mounted overlay (DIR is its
#                                  merged directory, over a lower made with `lower`): deletes
#                                  and an rm -rf + mkdir instead of hand-made whiteouts
#
# Needs root, mknod, setfattr, setcap and setfacl. Times are fixed so that trees compare exactly.
set -eu
what=$1
dir=$2
umask 022
cd "$dir"

stamp() { touch -h -d '2021-03-04 05:06:07.123456789' "$@"; }

case $what in
lower)
    mkdir -p keep opq/sub gone
    printf 'old\n' > opq/old
    printf 'deep\n' > opq/sub/deeper
    printf 'bye\n' > removed
    printf 'also bye\n' > gone/inside
    printf 'stays\n' > keep/stays
    chown 1000:1000 keep/stays keep
    chmod 0750 keep
    stamp opq/old opq/sub/deeper removed gone/inside keep/stays
    ;;
upper|merged)
    # regular files: content, owners, modes, times
    printf 'hello, layer\n' > plain
    head -c 70000 /dev/urandom > big.bin
    : > empty
    printf 'owned\n' > owned
    chown 1000:1000 owned
    chmod 0640 owned
    printf 'other\n' > owned-split
    chown 1234:5678 owned-split
    printf 'big ids\n' > owned-big
    chown 4000000000:3000000 owned-big
    # odd directory modes
    mkdir -m 0710 odd-dir
    printf 'x\n' > odd-dir/file
    mkdir -m 0700 private
    mkdir sticky && chmod 1777 sticky
    mkdir shared && chown 0:100 shared && chmod 2775 shared
    # setuid / setgid
    printf '#!/bin/sh\n' > suid && chmod 4755 suid
    printf '#!/bin/sh\n' > sgid && chown 0:50 sgid && chmod 2711 sgid
    # symlinks: relative, absolute, dangling, owned
    ln -s plain link-rel
    ln -s /etc/passwd link-abs
    ln -s does/not/exist link-dangling
    ln -s plain link-owned && chown -h 1000:1000 link-owned
    # hardlinks, also across directories
    mkdir links
    printf 'linked\n' > links/a
    ln links/a links/b
    ln links/a hard-top
    # devices and a FIFO
    mknod -m 0666 chardev c 1 3
    mknod -m 0660 blockdev b 7 0
    chown 0:6 blockdev
    mkfifo -m 0640 fifo
    # xattrs (text and binary), on a file and a directory
    setfattr -n user.greeting -v hello plain
    setfattr -n user.binary -v 0x00ff10 plain
    mkdir xdir
    setfattr -n user.dir -v yes xdir
    # a capability and ACLs
    printf '#!/bin/sh\n' > capped && chmod 0755 capped
    setcap cap_net_bind_service,cap_net_raw+ep capped
    # a namespaced (v3) capability: effective only where uid 1000 is root
    printf '#!/bin/sh\n' > capped-v3 && chmod 0755 capped-v3
    setfattr -n security.capability -v 0x0100000300040000000000000000000000000000e8030000 capped-v3
    printf 'acl\n' > acl-file
    setfacl -m u:1000:rw,g:100:r acl-file
    mkdir acl-dir
    setfacl -d -m u:1000:rwx acl-dir
    setfacl -m u:1001:rx acl-dir
    # names: longer than a ustar header holds, non-ASCII, with spaces
    long=$(printf 'd%.0s' $(seq 1 120))
    mkdir -p "names/$long"
    printf 'long\n' > "names/$long/$(printf 'f%.0s' $(seq 1 140))"
    printf 'utf8\n' > "names/café ☕"
    printf 'space\n' > "names/with space"
    ln -s "$long" "names/link-to-long-$(printf 'l%.0s' $(seq 1 90))"
    # times before 1970 and after 2038
    printf 'old\n' > before-epoch
    printf 'new\n' > after-2038
    # the lower's keep/ (0750, 1000:1000) gets a new file; in layer form the directory is
    # copied up as overlayfs would
    if [ ! -d keep ]; then mkdir -m 0750 keep && chown 1000:1000 keep; fi
    printf 'new\n' > keep/new
    if [ "$what" = upper ]; then
        # deletions, written the way overlayfs writes them
        mknod -m 0000 removed c 0 0
        mknod -m 0000 gone c 0 0
        mkdir opq
        setfattr -n trusted.overlay.opaque -v y opq
        printf 'fresh\n' > opq/fresh
        # opaque, but with nothing below it to hide
        mkdir fresh-opq
        setfattr -n trusted.overlay.opaque -v y fresh-opq
        printf 'inside\n' > fresh-opq/inside
    else
        rm removed
        rm -rf gone opq
        mkdir opq
        printf 'fresh\n' > opq/fresh
    fi
    stamp plain big.bin empty owned owned-split owned-big odd-dir/file suid sgid links/a capped acl-file \
        keep/new opq/fresh fifo chardev blockdev link-rel link-abs link-dangling link-owned
    touch -d '1960-05-06 07:08:09.5' before-epoch
    touch -d '2100-01-02 03:04:05.25' after-2038
    ;;
*)
    echo "usage: $0 lower|upper|merged DIR" >&2
    exit 2
    ;;
esac
