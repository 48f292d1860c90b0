#!/usr/bin/env python3
"""Crash injection: kill `strata` with SIGKILL at a random moment of apply-diff, create-layer,
remove, remap and import, then require that

  * `strata check` passes, directly or after `strata cleanup` (counted separately), and
  * every layer the operation touched is either fully there (its diff equals the expected
    tree) or absent (for apply-diff: as it was before, empty; for remap of a base layer or of a
    child layer, which copies its parent's files up: its diff all as before or all shifted, and
    its `idmaps` file saying which; for import: every layer present equals the reference, and
    importing again succeeds and gives the reference layers).

An interrupted remap is no exception: `cleanup` must roll it back from its undo journal.

Each trial runs on a fresh store. Kill times are uniform over 0..1.2x the operation's measured
duration, so some trials let the operation finish.

    scripts/reliability/crash-inject.py --trials 200 [--strata .build/debug/strata] [--seed N]
"""
import argparse, collections, os, random, shutil, signal, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Store, manifest, make_tar, make_oci  # noqa: E402

SHIFT = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]


def shifted(m):
    return {k: (v[0], v[1], v[2] + 100000, v[3] + 100000, v[4]) for k, v in m.items()}


class Fixture:
    def __init__(self, strata, scratch):
        self.strata, self.scratch = strata, scratch
        self.big = os.path.join(scratch, "big.tar")
        self.small = os.path.join(scratch, "small.tar")
        self.owned = os.path.join(scratch, "owned.tar")
        self.oci = os.path.join(scratch, "oci")
        make_tar(self.big, files=1500, big=4 << 20, seed=1)
        make_tar(self.small, files=200, big=1 << 20, seed=2)
        make_tar(self.owned, files=4000, big=1 << 16, seed=3, uids=True)
        make_oci(self.oci, os.path.join(scratch, "oci-work"))
        ref = Store(strata, os.path.join(scratch, "reference"))
        self.duration = {}
        for layer, tar in [("big", self.big), ("small", self.small), ("owned", self.owned)]:
            ref.run("create-layer", layer)
            t = time.monotonic()
            ref.run("apply-diff", layer, tar)
            if layer == "big":
                self.duration["apply-diff"] = time.monotonic() - t
        self.full = manifest(ref.diff("big"))
        self.small_tree = manifest(ref.diff("small"))
        self.owned_tree = manifest(ref.diff("owned"))
        t = time.monotonic()
        ref.run("create-layer", "tpl", "--template", "small")
        self.duration["create-layer"] = time.monotonic() - t
        # A child layer with its own files over a parent of many: its remap copies them all up.
        ref.run("create-layer", "parent")
        ref.run("apply-diff", "parent", self.owned)
        ref.run("create-layer", "kid", "--parent", "parent")
        ref.run("apply-diff", "kid", self.small)
        self.kid_tree = manifest(ref.diff("kid"))
        t = time.monotonic()
        ref.run("remap", "kid", *SHIFT)
        self.duration["remap-child"] = time.monotonic() - t
        self.kid_shifted = manifest(ref.diff("kid"))
        assert self.kid_shifted != self.kid_tree
        t = time.monotonic()
        ref.run("remap", "owned", *SHIFT)
        self.duration["remap"] = time.monotonic() - t
        assert manifest(ref.diff("owned")) == shifted(self.owned_tree)
        t = time.monotonic()
        ref.run("remove", "big")
        self.duration["remove"] = time.monotonic() - t
        t = time.monotonic()
        top = ref.run("import", f"{self.oci}:img").stdout.strip()
        self.duration["import"] = time.monotonic() - t
        self.image = {}
        for layer in ref.run("layers").stdout.split():
            if layer not in ("small", "owned", "tpl", "parent", "kid"):
                self.image[layer] = manifest(ref.diff(layer))
        assert top in self.image, (top, list(self.image))
        ref.destroy()


def setup(fx, store, op, rng):
    """Prepares the store; returns the operation's arguments and the invariant to check after."""
    if op == "apply-diff":
        store.run("create-layer", "L")
        def verify():
            if not store.exists("L"):
                return "the layer vanished"
            m = manifest(store.diff("L"))
            return None if m in ({}, fx.full) else f"partial content: {len(m)} of {len(fx.full)} entries"
        return ["apply-diff", "L", fx.big], verify, op, None
    if op == "create-layer":
        store.run("create-layer", "T")
        store.run("apply-diff", "T", fx.small)
        template = rng.random() < 0.5
        args = ["create-layer", "L"] + (["--template", "T"] if template else ["--parent", "T", "--rw"])
        def verify():
            if not store.exists("L"):
                return None
            m = manifest(store.diff("L"))
            want = fx.small_tree if template else {}
            return None if m == want else f"layer present with {len(m)} entries, expected {len(want)}"
        return args, verify, op, None
    if op == "remove":
        store.run("create-layer", "L")
        store.run("apply-diff", "L", fx.big)
        def verify():
            if not store.exists("L"):
                return None
            m = manifest(store.diff("L"))
            return None if m == fx.full else f"layer present with {len(m)} of {len(fx.full)} entries"
        return ["remove", "L"], verify, op, None
    if op == "remap":
        child = rng.random() < 0.5
        if child:
            store.run("create-layer", "P")
            store.run("apply-diff", "P", fx.owned)
            store.run("create-layer", "L", "--parent", "P")
            store.run("apply-diff", "L", fx.small)
            before, after = fx.kid_tree, fx.kid_shifted
        else:
            store.run("create-layer", "L")
            store.run("apply-diff", "L", fx.owned)
            before, after = fx.owned_tree, shifted(fx.owned_tree)
        idmaps = os.path.join(store.home, "L", "idmaps")
        def verify():
            if not store.exists("L"):
                return "the layer vanished"
            m = manifest(store.diff("L"))
            recorded = open(idmaps).read() if os.path.exists(idmaps) else None
            if m == before:
                return None if recorded is None else f"owners as before, but idmaps says {recorded!r}"
            if m == after:
                want = "uid 0:100000:65536\ngid 0:100000:65536\n"
                return None if recorded == want else f"owners shifted, but idmaps says {recorded!r}"
            done = sum(1 for k, v in m.items() if before.get(k) != v)
            return f"{'child' if child else 'base'} layer half shifted: {done} of {len(m)} entries changed"
        def observe():
            """What the kill left, before any check or cleanup: proof that rollbacks are exercised."""
            m = manifest(store.diff("L"))
            state = "as before" if m == before else "shifted" if m == after else "half shifted"
            journal = os.path.exists(os.path.join(store.home, "L", "remapping.undo"))
            return f"left {state}{' with journal' if journal else ''}"
        verify.observe = observe
        return ["remap", "L", *SHIFT], verify, ("remap-child" if child else "remap"), ("child layer" if child else "base layer")
    if op == "import":
        def verify():
            for layer in store.run("layers").stdout.split():
                if layer in fx.image and manifest(store.diff(layer)) != fx.image[layer]:
                    return f"layer {layer[:12]} present but not equal to the image's layer"
            p = store.run("import", f"{fx.oci}:img", check=False)
            if p.returncode != 0:
                return f"re-import failed: {p.stderr.strip()}"
            for layer, want in fx.image.items():
                if not store.exists(layer) or manifest(store.diff(layer)) != want:
                    return f"after re-import, layer {layer[:12]} differs from the image's"
            return None
        return ["import", f"{fx.oci}:img"], verify, op, None
    raise ValueError(op)


def trial(fx, root, op, rng):
    store = Store(fx.strata, root)
    try:
        args, verify, timing, variant = setup(fx, store, op, rng)
        delay = rng.uniform(0, 1.2 * fx.duration[timing])
        proc = store.start(*args)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        fate = "finished" if finished else "killed"
        if not finished and hasattr(verify, "observe"):
            variant = f"{variant}; {verify.observe()}"
        if finished and proc.returncode != 0:
            return fate, "error", f"{op} failed on its own: {proc.stderr.read().strip()}", variant
        p = store.run("check", check=False)
        outcome = "clean"
        if p.returncode != 0:
            store.run("cleanup", check=False)
            p2 = store.run("check", check=False)
            outcome = "clean after cleanup" if p2.returncode == 0 else "check failed"
            if p2.returncode != 0:
                return fate, outcome, p.stdout.strip() + " | after cleanup: " + p2.stdout.strip(), variant
        problem = verify()
        if problem is None:
            p = store.run("check", check=False)
            if p.returncode != 0:
                problem = "check fails after the verification: " + p.stdout.strip()
        return fate, outcome, problem, variant
    finally:
        store.destroy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--strata", default=".build/debug/strata")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--ops", default="apply-diff,create-layer,remove,remap,import")
    args = parser.parse_args()
    strata = os.path.abspath(args.strata)
    rng = random.Random(args.seed)
    scratch = tempfile.mkdtemp(prefix="strata-crash-", dir="/var/tmp")
    ops = args.ops.split(",")
    try:
        fx = Fixture(strata, scratch)
        print(f"seed {args.seed}; durations: " + ", ".join(f"{k} {v:.2f}s" for k, v in fx.duration.items()), flush=True)
        stats = collections.Counter()
        failures = []
        for n in range(args.trials):
            op = ops[n % len(ops)]
            fate, outcome, problem, variant = trial(fx, os.path.join(scratch, f"t{n}"), op, rng)
            stats[(op, fate)] += 1
            stats[(op, outcome)] += 1
            for label in (variant or "").split("; "):
                if label:
                    stats[(op, label)] += 1
            if problem:
                failures.append(f"trial {n} {op}{f' ({variant})' if variant else ''} ({fate}, {outcome}): {problem}")
                stats[(op, "FAILED")] += 1
                print("FAIL", failures[-1], flush=True)
        print(f"{args.trials} trials")
        for op in ops:
            row = {k[1]: v for k, v in stats.items() if k[0] == op}
            print(f"  {op}: " + ", ".join(f"{k} {v}" for k, v in sorted(row.items())))
        print(f"{len(failures)} failure(s)")
        return 1 if failures else 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
