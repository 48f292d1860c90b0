"""Helpers shared by the crash-injection and concurrency programs: running `strata` on a store,
walking trees into comparable manifests, building test tars and an OCI layout with umoci."""
import hashlib, io, os, random, shutil, stat, subprocess, tarfile

ENV = dict(os.environ, SWIFT_BACKTRACE="enable=no")


class Store:
    """A store under `root` (home `root/data/overlay`, run home `root/run/overlay`)."""

    def __init__(self, strata, root):
        self.strata, self.root = strata, root
        self.home = os.path.join(root, "data", "overlay")
        os.makedirs(root, exist_ok=True)

    def argv(self, *args):
        return [self.strata, args[0], "--root", os.path.join(self.root, "data"), "--run-root",
                os.path.join(self.root, "run"), "--storage-opt", "skip_mount_home=true", *args[1:]]

    def run(self, *args, check=True, timeout=300):
        p = subprocess.run(self.argv(*args), capture_output=True, text=True, env=ENV, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"strata {' '.join(args)}: {p.returncode}: {p.stderr.strip()}")
        return p

    def start(self, *args):
        return subprocess.Popen(self.argv(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=ENV, text=True)

    def exists(self, layer):
        return self.run("exists", layer, check=False).returncode == 0

    def diff(self, layer):
        return os.path.join(self.home, layer, "diff")

    def destroy(self):
        for mp in sorted(mounts_under(self.root), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def mounts_under(path):
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path.rstrip("/") + "/"):
                out.append(mp)
    return out


def manifest(top, owners=True):
    """relative path -> (kind, mode, uid, gid, content digest / link target / rdev)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, top)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    extra = hashlib.sha1(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            else:
                extra = None
            own = (st.st_uid, st.st_gid) if owners else ()
            result[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), *own, extra)
    return result


def make_tar(path, files=1500, big=4 << 20, seed=1, uids=False):
    """A layer tar: `files` small files in a few directories, one big file, a symlink, a hard link."""
    rng = random.Random(seed)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for d in range(max(1, files // 100)):
            info = tarfile.TarInfo(f"d{d}")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        for i in range(files):
            data = rng.randbytes(rng.randint(100, 4000))
            info = tarfile.TarInfo(f"d{i % max(1, files // 100)}/f{i}")
            info.size, info.mode = len(data), 0o644
            if uids:
                info.uid = info.gid = rng.choice([0, 1, 33, 1000, 65534])
            t.addfile(info, io.BytesIO(data))
        data = rng.randbytes(big)
        info = tarfile.TarInfo("big.bin")
        info.size, info.mode = len(data), 0o600
        t.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "d0/f0"
        t.addfile(info)
        info = tarfile.TarInfo("hard")
        info.type, info.linkname = tarfile.LNKTYPE, "d0/f0"
        t.addfile(info)


def make_oci(layout, work):
    """An OCI layout `layout:img` of three layers (adds, a change, a deletion) built with umoci."""
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True)
    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:img")
    bundle = os.path.join(work, "bundle")
    rng = random.Random(7)
    for step in range(3):
        shutil.rmtree(bundle, ignore_errors=True)
        sh("umoci", "unpack", "--image", f"{layout}:img", bundle)
        rootfs = os.path.join(bundle, "rootfs")
        d = os.path.join(rootfs, f"layer{step}")
        os.makedirs(d, exist_ok=True)
        for i in range(400):
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(rng.randbytes(rng.randint(100, 3000)))
        with open(os.path.join(rootfs, "big%d" % step), "wb") as f:
            f.write(rng.randbytes(2 << 20))
        if step == 2:
            shutil.rmtree(os.path.join(rootfs, "layer0"))
        sh("umoci", "repack", "--image", f"{layout}:img", bundle)
    shutil.rmtree(work, ignore_errors=True)
