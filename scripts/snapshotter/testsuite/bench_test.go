package testsuite

// A side-by-side benchmark over a unix socket: strata-snapshotter, and containerd's overlayfs
// snapshotter served by containerd's own snapshot service code (contrib/snapshotservice) in
// this process, both reached through containerd's proxy client. Runs only with
// STRATA_BENCH=1 (scripts/snapshotter/bench); prints medians and RSS figures. STRATA_BENCH_FILES
// sets the number of files of the Usage snapshot (default 100,000; 0 skips Usage), STRATA_BENCH_N
// the rounds of Prepare, Commit and Remove (default 200).

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
	"github.com/containerd/containerd/snapshots/proxy"
	"google.golang.org/grpc"
)

func serveOverlay(t *testing.T, root string) (snapshots.Snapshotter, func()) {
	sn, err := overlay.NewSnapshotter(filepath.Join(root, "root"))
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(root, "overlay.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(sn))
	go server.Serve(l)
	conn, err := grpc.Dial(socket, grpc.WithInsecure(), grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "overlayfs"), func() { conn.Close(); server.Stop(); sn.Close() }
}

func median(d []time.Duration) time.Duration { return quantile(d, 0.5) }

// quantile is the value below which the fraction q of d lies (nearest rank).
func quantile(d []time.Duration, q float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(q*float64(len(d)) + 0.5)
	if i >= len(d) {
		i = len(d) - 1
	}
	return d[i]
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "VmHWM") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(out, ", ")
}

// timings holds one snapshotter's Prepare, Commit and Remove durations.
type timings struct{ prepare, commit, remove []time.Duration }

func (m *timings) print(name string) {
	f := func(d []time.Duration) string {
		return fmt.Sprintf("median %v p90 %v", median(d), quantile(d, 0.9))
	}
	fmt.Printf("BENCH %s: Prepare %s, Commit %s, Remove %s (n=%d)\n", name, f(m.prepare), f(m.commit), f(m.remove), len(m.prepare))
}

// latency times n rounds of Prepare (on a committed base), Commit and Remove on each
// snapshotter, the snapshotters taking turns round by round so that both see the same load.
func latency(t *testing.T, names []string, sns []snapshots.Snapshotter, n int) {
	ctx := namespaces.WithNamespace(context.Background(), "bench")
	for _, sn := range sns {
		if _, err := sn.Prepare(ctx, "base-tmp", ""); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(ctx, "base", "base-tmp"); err != nil {
			t.Fatal(err)
		}
	}
	all := make([]timings, len(sns))
	for i := 0; i < n; i++ {
		k, c := fmt.Sprintf("k%d", i), fmt.Sprintf("c%d", i)
		for j, sn := range sns {
			t0 := time.Now()
			if _, err := sn.Prepare(ctx, k, "base"); err != nil {
				t.Fatal(err)
			}
			t1 := time.Now()
			if err := sn.Commit(ctx, c, k); err != nil {
				t.Fatal(err)
			}
			t2 := time.Now()
			if err := sn.Remove(ctx, c); err != nil {
				t.Fatal(err)
			}
			t3 := time.Now()
			m := &all[j]
			m.prepare, m.commit, m.remove = append(m.prepare, t1.Sub(t0)), append(m.commit, t2.Sub(t1)), append(m.remove, t3.Sub(t2))
		}
	}
	for j := range sns {
		all[j].print(names[j])
	}
}

func usage(t *testing.T, name string, sn snapshots.Snapshotter, work string, files int) {
	ctx := namespaces.WithNamespace(context.Background(), "bench")
	mounts, err := sn.Prepare(ctx, "big", "base")
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(work, name+"-mnt")
	os.MkdirAll(target, 0o755)
	if err := mount.All(mounts, target); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < files; i++ {
		dir := filepath.Join(target, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			os.MkdirAll(dir, 0o755)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mount.UnmountAll(target, 0)
	var times []time.Duration
	var u snapshots.Usage
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		u, err = sn.Usage(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, time.Since(t0))
	}
	fmt.Printf("BENCH %s: Usage of %d files: median %v of 5 (size %d, inodes %d)\n", name, files, median(times), u.Size, u.Inodes)
}

func TestBench(t *testing.T) {
	if os.Getenv("STRATA_BENCH") != "1" {
		t.Skip("STRATA_BENCH=1 runs the benchmark")
	}
	n, files := 200, 100000
	if v := os.Getenv("STRATA_BENCH_FILES"); v != "" {
		fmt.Sscan(v, &files)
	}
	if v := os.Getenv("STRATA_BENCH_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	dir := t.TempDir()
	strataRoot := filepath.Join(dir, "strata", "root")
	os.MkdirAll(strataRoot, 0o755)
	sn, cleanup, err := newStrata(context.Background(), strataRoot)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	pid := strataPID(filepath.Join(dir, "strata"))
	fmt.Printf("BENCH strata-snapshotter RSS idle: %s\n", rss(pid))
	osn, ocleanup := serveOverlay(t, filepath.Join(dir, "overlayfs"))
	defer ocleanup()
	latency(t, []string{"strata", "overlayfs"}, []snapshots.Snapshotter{sn, osn}, n)
	if files > 0 {
		usage(t, "strata", sn, dir, files)
		usage(t, "overlayfs", osn, dir, files)
	}
	fmt.Printf("BENCH strata-snapshotter RSS after: %s\n", rss(pid))
}
