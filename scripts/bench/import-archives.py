#!/usr/bin/env python3
"""`strata import` of one image in the forms people have it: the docker-archive and oci-archive
`podman save` writes, podman's oci-dir layout (gzip layers), a layout with the same plain layer
as the docker-archive, and the docker-archive gzipped as a whole. Each run imports into a fresh
store; the forms are shuffled within each round after one warm-up round (page cache warm).
Prints wall and CPU time (user + system of strata and its threads) per run, the medians, and the
per-round wall ratio of the docker-archive to each other form.

    scripts/bench/import-archives.py ROOTFS.tar [--runs 7] [--strata .build/release/strata]
                                     [--work /var/tmp/strata-import-bench] [--store-dir DIR]

ROOTFS.tar is a root filesystem tarball (the main job's debootstrap minbase,
/var/tmp/strata-main-job/rootfs.tar, when it exists). podman makes the image on a private store
under the work directory, in a mount namespace of its own with a tmpfs on /var/lib/containers;
the fixtures are kept there for later runs. --store-dir puts the stores elsewhere (a tmpfs
takes the disk out of the figures). Needs root, podman, skopeo and unshare.
"""
import argparse, hashlib, json, os, random, resource, shutil, statistics, subprocess, time


def make_fixtures(rootfs, work):
    if os.path.exists(os.path.join(work, "done")):
        return
    for sub in ("p/root", "p/run", "p/tmp", "p/net"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    with open(os.path.join(work, "p/storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{work}/p/root"\nrunroot = "{work}/p/run"\n')
    podman = (f"podman --root {work}/p/root --runroot {work}/p/run --storage-driver vfs --cgroup-manager cgroupfs "
              f"--events-backend none --tmpdir {work}/p/tmp --network-config-dir {work}/p/net")
    script = f"""set -e
if [ -d /var/lib/containers ]; then mount -t tmpfs tmpfs /var/lib/containers; else mount -t tmpfs tmpfs /var/lib; fi
export CONTAINERS_STORAGE_CONF={work}/p/storage.conf TMPDIR={work}/p/tmp
cd {work}
{podman} import {os.path.abspath(rootfs)} localhost/minbase:1 >/dev/null
{podman} save -o docker.tar localhost/minbase:1 >/dev/null
{podman} save --format oci-archive -o oci.tar localhost/minbase:1 >/dev/null
{podman} save --format oci-dir -o ocidir localhost/minbase:1 >/dev/null
gzip -c docker.tar > docker.tar.gz
"""
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script], check=True)
    make_plain_layout(work)
    shutil.rmtree(os.path.join(work, "p"))
    open(os.path.join(work, "done"), "w").close()


def make_plain_layout(work):
    """An OCI layout holding the docker-archive's own plain layer and configuration."""
    out = os.path.join(work, "layout-plain")
    os.makedirs(out + "/blobs/sha256")
    extracted = os.path.join(work, "x")
    os.makedirs(extracted)
    subprocess.run(["tar", "-xf", os.path.join(work, "docker.tar"), "-C", extracted], check=True)
    entry = json.load(open(os.path.join(extracted, "manifest.json")))[0]

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{digest}", "wb") as f:
            f.write(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    config = put(open(os.path.join(extracted, entry["Config"]), "rb").read())
    layers = [dict(put(open(os.path.join(extracted, name), "rb").read()), mediaType="application/vnd.oci.image.layer.v1.tar")
              for name in entry["Layers"]]
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                               "layers": layers}).encode())
    index = {"schemaVersion": 2, "manifests": [dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
                                                    annotations={"org.opencontainers.image.ref.name": "localhost/minbase:1"})]}
    json.dump(index, open(out + "/index.json", "w"))
    open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
    shutil.rmtree(extracted)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rootfs")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--strata", default=".build/release/strata")
    parser.add_argument("--work", default="/var/tmp/strata-import-bench")
    parser.add_argument("--store-dir")
    args = parser.parse_args()
    strata = os.path.abspath(args.strata)
    work = os.path.abspath(args.work)
    make_fixtures(args.rootfs, work)
    forms = {
        "docker-archive": f"{work}/docker.tar",
        "layout-podman-gzip": f"{work}/ocidir:localhost/minbase:1",
        "layout-plain": f"{work}/layout-plain:localhost/minbase:1",
        "oci-archive": f"{work}/oci.tar",
        "docker-archive.gz": f"{work}/docker.tar.gz",
    }
    base = os.path.abspath(args.store_dir or work)
    store = ["--root", base + "/store", "--run-root", base + "/run"]

    def clean():
        subprocess.run([strata, "cleanup"] + store, stderr=subprocess.DEVNULL)
        shutil.rmtree(base + "/store", ignore_errors=True)
        shutil.rmtree(base + "/run", ignore_errors=True)
        os.sync()

    results = {form: [] for form in forms}
    for run in range(args.runs + 1):
        order = list(forms)
        random.shuffle(order)
        for form in order:
            clean()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.monotonic()
            top = subprocess.run([strata, "import", forms[form]] + store, check=True, capture_output=True, text=True).stdout.strip()
            wall = time.monotonic() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if run > 0:
                results[form].append((wall, cpu))
                print(f"{run} {form:20} wall {wall:6.2f} s  cpu {cpu:6.2f} s  top {top[:12]}", flush=True)
    clean()
    print(f"medians over {args.runs} runs:")
    for form, values in results.items():
        print(f"  {form:20} wall {statistics.median(v[0] for v in values):6.2f} s  cpu {statistics.median(v[1] for v in values):6.2f} s")
    for form in list(forms)[1:]:
        ratios = [a[0] / b[0] for a, b in zip(results["docker-archive"], results[form])]
        print(f"  docker-archive / {form}: per-round wall ratio median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
