#!/usr/bin/env python3
"""Start-up time of the CLI: `strata exists` against `containers-storage exists` (the same no-op
on each side's own store), the two interleaved, each process timed from spawn to exit with no
wrapper in between. Prints the minimum, first quartile and median wall time, and the median CPU
time (user + system, from the children's rusage).

    scripts/bench/startup-time.py [--runs 80] [--strata .build/release/strata] [STRATA…]

Extra STRATA paths are timed too (to compare builds). Needs root and containers-storage for its
side (left out when missing). Stores live in a temporary directory under /var/tmp and are
removed at the end.
"""
import argparse, os, resource, shutil, statistics, subprocess, sys, tempfile, time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=80)
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("more", nargs="*", help="more strata executables to time")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="strata-startup-", dir="/var/tmp")
    env = dict(os.environ)
    try:
        store = ["--root", f"{work}/root", "--run-root", f"{work}/run"]
        commands = {}
        strata = [os.path.abspath(p) for p in [args.strata] + args.more]
        subprocess.run([strata[0], "create-layer", *store, "base"], check=True, stdout=subprocess.DEVNULL)
        for path in strata:
            commands[f"strata {path}"] = [path, "exists", *store, "base"]
        if shutil.which("containers-storage"):
            conf = f"{work}/storage.conf"
            with open(conf, "w") as f:
                f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/cs-root"\nrunroot = "{work}/cs-run"\n')
            env["CONTAINERS_STORAGE_CONF"] = conf
            layer = subprocess.run(["containers-storage", "create-layer"], check=True, env=env,
                                   capture_output=True, text=True).stdout.split()[-1]
            commands["containers-storage"] = ["containers-storage", "exists", layer]
        wall = {name: [] for name in commands}
        cpu = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                status = subprocess.run(command, stdout=subprocess.DEVNULL, env=env).returncode
                elapsed = (time.perf_counter() - start) * 1000
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if status != 0:
                    sys.exit(f"{name}: exit status {status}")
                wall[name].append(elapsed)
                cpu[name].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        print(f"{args.runs} runs each, interleaved; load average {os.getloadavg()[0]:.2f}")
        for name in commands:
            w = sorted(wall[name])
            print(f"{name:60s} wall min {w[0]:.2f} p25 {w[len(w) // 4]:.2f} median {statistics.median(w):.2f} ms"
                  f"  cpu median {statistics.median(cpu[name]):.2f} ms")
    finally:
        for line in reversed(open("/proc/self/mounts").read().splitlines()):
            point = line.split()[1]
            if point.startswith(work + "/") or point == work:
                subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
