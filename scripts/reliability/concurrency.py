#!/usr/bin/env python3
"""Concurrency: several `strata` processes at once on one store, for a bounded time, each
looping over random create-layer / apply-diff / mount / unmount / remove / exists on a small
pool of layer IDs (so they collide). Errors other than the expected ones (already exists, does
not exist, busy/mounted, a parent that is not the layer's) fail the run. Afterwards `strata
check` must be clean while layers are still mounted, every layer is removed, and then no mount
may remain under the store and `strata check` must still be clean.

    scripts/reliability/concurrency.py [--workers 4] [--seconds 30] [--strata .build/debug/strata]
"""
import argparse, collections, os, random, re, shutil, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Store, make_tar, mounts_under  # noqa: E402

EXPECTED = [
    r"already exists", r"does not exist", r"busy", r"is mounted", r"not the layer's parent",
    r"another process is importing", r"stacks on it",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--strata", default=".build/debug/strata")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="strata-concurrency-", dir="/var/tmp")
    store = Store(os.path.abspath(args.strata), os.path.join(scratch, "store"))
    tar = os.path.join(scratch, "small.tar")
    make_tar(tar, files=100, big=1 << 18, seed=5)
    ids = [f"c{i}" for i in range(args.layers)]
    counts = collections.Counter()
    unexpected = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def worker(n):
        rng = random.Random(args.seed * 100 + n)
        while time.monotonic() < deadline:
            layer = rng.choice(ids)
            op = rng.choice(["create", "create", "apply", "mount", "unmount", "remove", "exists"])
            if op == "create":
                argv = ["create-layer", layer]
                if rng.random() < 0.5:
                    argv += ["--parent", rng.choice(ids)]
                if rng.random() < 0.5:
                    argv += ["--rw"]
            elif op == "apply":
                argv = ["apply-diff", layer, tar]
            elif op == "mount":
                argv = ["mount", layer]
            elif op == "unmount":
                argv = ["unmount", layer]
            elif op == "remove":
                argv = ["remove", layer]
            else:
                argv = ["exists", layer]
            p = store.run(*argv, check=False)
            with lock:
                counts[(op, "ok" if p.returncode == 0 else "error")] += 1
                if p.returncode != 0 and op != "exists":
                    message = p.stderr.strip()
                    if not any(re.search(e, message) for e in EXPECTED):
                        unexpected.append(f"{' '.join(argv)}: {p.returncode}: {message}")

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(counts.values())
        print(f"{args.workers} workers, {args.seconds:.0f}s, seed {args.seed}: {total} operations")
        for op in ["create", "apply", "mount", "unmount", "remove", "exists"]:
            print(f"  {op}: {counts[(op, 'ok')]} ok, {counts[(op, 'error')]} errors (unexpected ones listed below)")
        failed = False
        for line in unexpected[:20]:
            print("UNEXPECTED", line)
        if unexpected:
            print(f"{len(unexpected)} unexpected error(s)")
            failed = True
        p = store.run("check", check=False)
        print("check while layers may be mounted:", "clean" if p.returncode == 0 else "FAILED\n" + p.stdout)
        failed |= p.returncode != 0
        mounted = [m for m in mounts_under(store.root)]
        print(f"mounts left by the run (counted, expected): {len(mounted)}")
        # Children first: remove until nothing is left.
        for _ in range(args.layers + 1):
            for layer in store.run("layers").stdout.split():
                store.run("remove", layer, check=False)
        left = store.run("layers").stdout.split()
        leaked = mounts_under(store.root)
        print(f"after removing every layer: {len(left)} layer(s), {len(leaked)} mount(s) left")
        failed |= bool(left) or bool(leaked)
        p = store.run("check", check=False)
        print("check at the end:", "clean" if p.returncode == 0 else "FAILED\n" + p.stdout)
        failed |= p.returncode != 0
        print("RESULT:", "FAILED" if failed else "passed")
        return 1 if failed else 0
    finally:
        store.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
