// Package engines drives Bulwark through the real container engines from
// Debian — dockerd (docker.io), podman and containerd (ctr) — the way a user
// registers it: `dockerd --add-runtime`, `podman --runtime`, `ctr run
// --runc-binary`. Every engine runs with private roots, sockets and state in
// a temporary directory, without networking (docker: --bridge=none and no
// iptables; podman: --network none; ctr: no CNI), and is stopped and its data
// removed when the tests end.
//
// scripts/install-engines.sh installs the engines; a test whose engine is
// still missing skips and says which.
package engines

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

var (
	bulwarkBin string
	// workDir holds the binary, the rootfs and every engine's data; short,
	// because unix socket paths are limited to 107 bytes.
	workDir string
	// installErr is why scripts/install-engines.sh failed, if it did.
	installErr error
)

// hostPaths are directories the engines create on the host whatever their
// --root says (dockerd's trust key in /etc/docker, its plugin directory,
// containerd's shim sockets under /run/containerd/s, podman's blob cache).
// The ones that did not exist before the tests are removed after them.
// defaultRoot is bulwark's default --root, which podman leaves it on.
const defaultRoot = "/run/bulwark"

var hostPaths = []string{"/etc/docker", "/run/docker", "/run/containerd", "/var/lib/containers", "/run/containers", "/run/libpod"}

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: engine tests start container daemons and need root")
		os.Exit(0)
	}
	existed := map[string]bool{}
	for _, p := range append(hostPaths, defaultRoot) {
		if _, err := os.Lstat(p); err == nil {
			existed[p] = true
		}
	}
	code := run(m)
	for _, p := range hostPaths {
		if !existed[p] {
			os.RemoveAll(p)
		}
	}
	if !existed[defaultRoot] {
		// Not RemoveAll: another test run may be using it by now.
		os.Remove(defaultRoot)
	}
	os.Exit(code)
}

func run(m *testing.M) int {
	var err error
	if workDir, err = os.MkdirTemp("", "bwe-"); err != nil {
		fmt.Println(err)
		return 1
	}
	defer removeAll(workDir)
	if out, err := exec.Command("../../scripts/install-engines.sh").CombinedOutput(); err != nil {
		installErr = fmt.Errorf("scripts/install-engines.sh: %v: %s", err, bytes.TrimSpace(out))
		fmt.Println("engine install failed, engine tests will skip:", installErr)
	}
	bulwarkBin = filepath.Join(workDir, "bulwark")
	if env := os.Getenv("BULWARK"); env != "" {
		bulwarkBin = env
	} else {
		if err := testrootfs.BuildBulwark(bulwarkBin); err != nil {
			fmt.Println("building bulwark:", err)
			return 1
		}
	}
	defer stopAll()
	return m.Run()
}

// stoppers are the engine daemons started by the tests, stopped at the end
// in reverse order.
var (
	stopMu   sync.Mutex
	stoppers []func()
)

func atExit(f func()) {
	stopMu.Lock()
	defer stopMu.Unlock()
	stoppers = append(stoppers, f)
}

func stopAll() {
	stopMu.Lock()
	defer stopMu.Unlock()
	for i := len(stoppers) - 1; i >= 0; i-- {
		stoppers[i]()
	}
	stoppers = nil
}

// requireEngine skips unless every named binary is installed.
func requireEngine(t *testing.T, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if installErr != nil {
				t.Skipf("%s not installed (%v)", b, installErr)
			}
			t.Skipf("%s not installed: run scripts/install-engines.sh", b)
		}
	}
}

var (
	rootfsOnce sync.Once
	rootfsTar  string
	rootfsErr  error
)

// rootfsTarball is the test rootfs (busybox + payloads) as a tar archive,
// the input of `docker import` and `podman import` and the single layer of
// the OCI archive for `ctr image import`.
func rootfsTarball(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() {
		dir := filepath.Join(workDir, "rootfs")
		if rootfsErr = testrootfs.Build(dir); rootfsErr != nil {
			return
		}
		rootfsTar = filepath.Join(workDir, "rootfs.tar")
		out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", rootfsTar, ".").CombinedOutput()
		if err != nil {
			rootfsErr = fmt.Errorf("tar rootfs: %v: %s", err, out)
		}
	})
	if rootfsErr != nil {
		t.Fatalf("building the test rootfs: %v", rootfsErr)
	}
	return rootfsTar
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// runCmd runs a command with a time limit, stdout and stderr to files (a
// detached child that inherits a pipe would block the wait forever).
func runCmd(t *testing.T, stdin []byte, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr = out, errf
	// conmon writes an "oom" marker into its cwd when podman's container
	// is OOM-killed: keep that out of the source tree.
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Start()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %v: still running after 120s", name, args)
	}
	ob, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errf.Name())
	r := result{stdout: string(ob), stderr: string(eb)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return r
}

// hostMountsNaming lists host mounts whose line mentions id.
func hostMountsNaming(id string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, id) {
			out = append(out, l)
		}
	}
	return out
}

// The daemons' host-state helpers, shared with the other daemon suite.
var (
	waitFor         = daemontest.WaitFor
	mountsUnder     = daemontest.MountsUnder
	removeAll       = daemontest.RemoveAll
	stopProcess     = daemontest.StopProcess
	leftoverCgroups = daemontest.LeftoverCgroups
)
