#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/corpus/: valid and hostile tar streams for ApplyFuzz, and
one input per parser for ParseFuzz (first byte: which parser). Re-run to regenerate."""
import gzip, io, os, tarfile, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Fuzz", "corpus")
apply_dir = os.path.join(root, "apply")
parse_dir = os.path.join(root, "parse")
os.makedirs(apply_dir, exist_ok=True)
os.makedirs(parse_dir, exist_ok=True)

def tar(name, members, fmt=tarfile.GNU_FORMAT, compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m in members:
            info = tarfile.TarInfo(m["name"])
            info.type = m.get("type", tarfile.REGTYPE)
            info.mode = m.get("mode", 0o644)
            info.uid, info.gid = m.get("uid", 0), m.get("gid", 0)
            info.linkname = m.get("link", "")
            info.mtime = 1700000000
            info.pax_headers = m.get("pax", {})
            data = m.get("data", b"")
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    data = buf.getvalue()
    if compress:
        data = gzip.compress(data, mtime=0)
    with open(os.path.join(apply_dir, name), "wb") as f:
        f.write(data)

D, F, L, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
tar("valid-basic.tar", [
    {"name": "etc", "type": D, "mode": 0o755},
    {"name": "etc/hostname", "data": b"strata\n"},
    {"name": "bin", "type": D, "mode": 0o755},
    {"name": "bin/sh", "data": b"#!/bin/true\n", "mode": 0o755},
    {"name": "bin/ash", "type": H, "link": "bin/sh"},
    {"name": "usr/lib/libc.so", "type": L, "link": "/lib/libc.so.6"},
    {"name": "tmp", "type": D, "mode": 0o1777},
])
tar("valid-whiteouts.tar", [
    {"name": "etc", "type": D, "mode": 0o755},
    {"name": "etc/.wh.passwd"},
    {"name": "var", "type": D, "mode": 0o755},
    {"name": "var/.wh..wh..opq"},
    {"name": "var/new", "data": b"x"},
])
tar("valid-pax.tar.gz", [
    {"name": "a" * 120 + "/b" * 40, "data": b"long"},
    {"name": "xattr", "data": b"x", "pax": {"SCHILY.xattr.user.test": "value", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}},
    {"name": "setuid", "data": b"s", "mode": 0o4755, "uid": 1000, "gid": 1000},
], fmt=tarfile.PAX_FORMAT, compress=True)
tar("hostile-dotdot.tar", [
    {"name": "../escape", "data": b"out"},
    {"name": "a/../../escape2", "data": b"out"},
])
tar("hostile-absolute.tar", [
    {"name": "/tmp/strata-fuzz-absolute", "data": b"out"},
])
tar("hostile-symlink-walk.tar", [
    {"name": "up", "type": L, "link": ".."},
    {"name": "up/escape", "data": b"out"},
    {"name": "abs", "type": L, "link": "/tmp"},
    {"name": "abs/strata-fuzz-through-symlink", "data": b"out"},
])
tar("hostile-hardlink-out.tar", [
    {"name": "passwd", "type": H, "link": "../../../../etc/passwd"},
    {"name": "passwd2", "type": H, "link": "/etc/passwd"},
])
tar("hostile-replace-dir-with-symlink.tar", [
    {"name": "d", "type": D},
    {"name": "d", "type": L, "link": "/tmp"},
    {"name": "d/strata-fuzz-after-replace", "data": b"out"},
])
tar("hostile-whiteout-escape.tar", [
    {"name": "../.wh.victim"},
    {"name": ".wh..wh..opq"},
    {"name": "x/.wh...", },
])

def parse(name, selector, text):
    with open(os.path.join(parse_dir, name), "wb") as f:
        f.write(bytes([selector]) + text.encode())

parse("idmap", 0, "0:100000:65536")
parse("idmap-list", 1, "0:100000:65536,65536:300000:1")
parse("driver-options", 2, "mountopt=nodev,metacopy=on\nsize=10G\ninodes=1000\nforce_mask=0700\nskip_mount_home=true")
parse("mount-options", 3, "nodev,metacopy=on,context=\"system_u:object_r:container_file_t:s0:c1,c2\"")
parse("size", 4, "10G")
parse("selinux", 5, "system_u:object_r:container_file_t:s0:c1,c2")
parse("layer-id", 6, "sha256-abc.def_1")
parse("mount-option", 7, "upperdir=/x")
