package testsuite

// Usage of a container snapshot holding many files, asked of containerd (its snapshots service,
// reached through containerd's proxy client as ctr and the CRI reach it): strata-snapshotter,
// a proxy plugin whose snapshot has a size limit and so a project quota to read, next to
// containerd's built-in overlayfs snapshotter, which walks the tree, in the same containerd on the
// same XFS (mounted with prjquota). scripts/snapshotter/usage-quota runs it in the kernel tier's
// guest. Runs only when STRATA_USAGE_CONTAINERD names containerd's socket; STRATA_USAGE_FILES
// sets the number of files (default 100,000).

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"
)

// gcRoot keeps containerd's garbage collector off snapshots made outside a lease.
var gcRoot = map[string]string{"containerd.io/gc.root": "strata-usage"}

// fillSnapshot writes files one-byte files into target, a thousand to a directory.
func fillSnapshot(target string, files int) error {
	for d := 0; d*1000 < files; d++ {
		dir := filepath.Join(target, fmt.Sprintf("dir%03d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		for f := d * 1000; f < files && f < (d+1)*1000; f++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%06d", f)), []byte{'u'}, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// measureUsage prepares a container snapshot on an empty committed parent through containerd,
// fills it, and times `rounds` Usage calls; it returns them sorted, with the last Usage.
func measureUsage(ctx context.Context, sn snapshots.Snapshotter, labels map[string]string, target string, files, rounds int) ([]time.Duration, snapshots.Usage, error) {
	var usage snapshots.Usage
	if _, err := sn.Prepare(ctx, "usage-base-tmp", "", snapshots.WithLabels(gcRoot)); err != nil {
		return nil, usage, err
	}
	if err := sn.Commit(ctx, "usage-base", "usage-base-tmp", snapshots.WithLabels(gcRoot)); err != nil {
		return nil, usage, err
	}
	mounts, err := sn.Prepare(ctx, "usage-container", "usage-base", snapshots.WithLabels(labels))
	if err != nil {
		return nil, usage, err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, usage, err
	}
	if err := mount.All(mounts, target); err != nil {
		return nil, usage, err
	}
	filled := fillSnapshot(target, files)
	if err := mount.UnmountAll(target, 0); err != nil {
		return nil, usage, err
	}
	if filled != nil {
		return nil, usage, filled
	}
	var times []time.Duration
	for i := 0; i < rounds; i++ {
		start := time.Now()
		if usage, err = sn.Usage(ctx, "usage-container"); err != nil {
			return nil, usage, err
		}
		times = append(times, time.Since(start))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if err := sn.Remove(ctx, "usage-container"); err != nil {
		return nil, usage, err
	}
	return times, usage, sn.Remove(ctx, "usage-base")
}

func TestUsageThroughContainerd(t *testing.T) {
	address := os.Getenv("STRATA_USAGE_CONTAINERD")
	if address == "" {
		t.Skip("STRATA_USAGE_CONTAINERD=<containerd's socket> runs it (scripts/snapshotter/usage-quota)")
	}
	files, rounds := 100000, 5
	if v := os.Getenv("STRATA_USAGE_FILES"); v != "" {
		fmt.Sscan(v, &files)
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure(), grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := namespaces.WithNamespace(context.Background(), "strata-usage")
	work := t.TempDir()
	medians := map[string]time.Duration{}
	for _, name := range []string{"strata", "overlayfs"} {
		labels := map[string]string{}
		for k, v := range gcRoot {
			labels[k] = v
		}
		if name == "strata" {
			labels["containerd.io/snapshot/strata.size"] = "1G"
		}
		sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), name)
		times, usage, err := measureUsage(ctx, sn, labels, filepath.Join(work, name), files, rounds)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if usage.Inodes < int64(files) {
			t.Errorf("%s: Usage counts %d inodes for %d files", name, usage.Inodes, files)
		}
		medians[name] = times[len(times)/2]
		fmt.Printf("USAGE %s: %d files: Usage median %v of %d (fastest %v, slowest %v); size %d bytes, %d inodes\n",
			name, files, medians[name], rounds, times[0], times[len(times)-1], usage.Size, usage.Inodes)
	}
	fmt.Printf("USAGE strata / overlayfs: %.5fx (target <= 0.01x)\n", float64(medians["strata"])/float64(medians["overlayfs"]))
}
