// containerd's own snapshotter test suite (snapshots/testsuite of Debian's
// golang-github-containerd-containerd-dev), run against strata-snapshotter through containerd's
// proxy client, and against containerd's built-in overlayfs snapshotter in the same run.
//
// Built offline in GOPATH mode against /usr/share/gocode (scripts/snapshotter/run-testsuite).
// STRATA_SNAPSHOTTER names the strata-snapshotter binary.
package testsuite

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/overlay"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

// The snapshotters' process IDs by directory (for the benchmark's RSS figures); the suite's
// cases run in parallel.
var (
	pidsLock sync.Mutex
	pids     = map[string]int{}
)

func strataPID(base string) int {
	pidsLock.Lock()
	defer pidsLock.Unlock()
	return pids[base]
}

// newStrata starts one strata-snapshotter for one test case (the suite gives each case a fresh
// root) and returns containerd's proxy client of it.
func newStrata(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
	binary := os.Getenv("STRATA_SNAPSHOTTER")
	if binary == "" {
		return nil, nil, fmt.Errorf("STRATA_SNAPSHOTTER is not set")
	}
	base := filepath.Dir(root)
	socket := filepath.Join(base, "strata.sock")
	config := filepath.Join(base, "strata.conf")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("[snapshotter]\nrun_root = %q\n", filepath.Join(base, "run"))), 0o600); err != nil {
		return nil, nil, err
	}
	logFile, err := os.Create(filepath.Join(base, "strata.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(binary, "--socket", socket, "--root", root, "--config", config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("unix", socket)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(base, "strata.log"))
			return nil, nil, fmt.Errorf("strata-snapshotter did not serve %s: %s", socket, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.Dial(socket, grpc.WithInsecure(), grpc.WithContextDialer(func(ctx context.Context, address string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", address)
	}))
	if err != nil {
		cmd.Process.Kill()
		return nil, nil, err
	}
	pidsLock.Lock()
	pids[base] = cmd.Process.Pid
	pidsLock.Unlock()
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "strata")
	cleanup := func() error {
		conn.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		logFile.Close()
		return err
	}
	return sn, cleanup, nil
}

func newOverlay(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
	sn, err := overlay.NewSnapshotter(root)
	if err != nil {
		return nil, nil, err
	}
	return sn, sn.Close, nil
}

func TestStrata(t *testing.T) { testsuite.SnapshotterSuite(t, "strata", newStrata) }

func TestOverlayfs(t *testing.T) { testsuite.SnapshotterSuite(t, "overlayfs", newOverlay) }
