// Package cri drives Bulwark the way Kubernetes does: through containerd's
// CRI plugin (Debian's containerd 1.6), selected per pod by a runtime
// handler that `bulwark install containerd` wrote, with pods on a CNI
// bridge, driven by crictl and by Kubernetes' own CRI validation suite,
// critest (both from sigs.k8s.io/cri-tools).
//
// The threat these tests guard against is a drop-in that only looks like
// one: a runtime that passes runc's command-line tests but breaks what the
// kubelet relies on (pod sandboxes whose namespaces containers join, exec
// and streaming, restarts in the same sandbox, OOM reported back, stats).
//
// Each daemon here is private: its own root, state, sockets, CNI
// configuration, bridge (bwcri0) and subnet, so it never meets the
// containerd of tests/engines or the host's. Nothing is pulled: the images
// are built from the test rootfs and imported with `ctr -n k8s.io images
// import`; critest, which always pulls, gets them from a registry in the
// test process that containerd uses as the mirror of every registry.
//
// scripts/install-cri.sh installs containerd, runc and the CNI plugins and
// builds crictl and critest; a test whose tool is missing skips and says why.
package cri

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

var (
	bulwarkBin string
	// workDir holds the binary, images and every daemon's data; short,
	// because unix socket paths are limited to 107 bytes.
	workDir string
	// crictlBin and critestBin are built by scripts/install-cri.sh.
	crictlBin, critestBin string
	installErr            error
	// rootfsTar is the test rootfs (busybox + payloads) as one layer.
	rootfsTar string
)

const criToolsVersion = "v1.37.0"

// hostPaths are directories containerd, its shims and the CNI plugins
// create on the host whatever the daemon's --root says (the shims' sockets
// and runtime state under /run/containerd, the CNI result cache, the pods'
// netns files). The ones that did not exist before the tests are removed
// after them.
var hostPaths = []string{"/run/containerd", "/var/lib/cni", "/var/run/netns"}

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: CRI tests start containerd and need root")
		os.Exit(0)
	}
	existed := map[string]bool{}
	for _, p := range hostPaths {
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
	os.Exit(code)
}

func run(m *testing.M) int {
	var err error
	if workDir, err = os.MkdirTemp("", "bwcri-"); err != nil {
		fmt.Println(err)
		return 1
	}
	// 0711, as containerd makes its own root and state directories: the
	// hardening floor's user namespace makes container root an unprivileged
	// host uid, which must still reach its rootfs below them.
	if err := os.Chmod(workDir, 0o711); err != nil {
		fmt.Println(err)
		return 1
	}
	defer removeAll(workDir)
	if out, err := exec.Command("../../scripts/install-cri.sh").CombinedOutput(); err != nil {
		installErr = fmt.Errorf("scripts/install-cri.sh: %v: %s", err, bytes.TrimSpace(out))
		fmt.Println("CRI install failed, CRI tests will skip:", installErr)
	}
	tools, _ := filepath.Abs(filepath.Join("..", "..", "_build", "tools", "cri-tools@"+criToolsVersion))
	crictlBin, critestBin = filepath.Join(tools, "crictl"), filepath.Join(tools, "critest")
	bulwarkBin = filepath.Join(workDir, "bulwark")
	if env := os.Getenv("BULWARK"); env != "" {
		bulwarkBin = env
	} else if err := testrootfs.BuildBulwark(bulwarkBin); err != nil {
		fmt.Println("building bulwark:", err)
		return 1
	}
	dir := filepath.Join(workDir, "rootfs")
	if err := testrootfs.Build(dir); err != nil {
		fmt.Println("building the test rootfs:", err)
		return 1
	}
	rootfsTar = filepath.Join(workDir, "rootfs.tar")
	if out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", rootfsTar, ".").CombinedOutput(); err != nil {
		fmt.Printf("tar rootfs: %v: %s\n", err, out)
		return 1
	}
	defer stopAll()
	return m.Run()
}

// requireTools skips unless containerd, the CNI plugins and the named
// cri-tools binaries are there.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, b := range append([]string{"/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc", cniBinDir + "/bridge"}, tools...) {
		if _, err := os.Stat(b); err != nil {
			if installErr != nil {
				t.Skipf("%s missing (%v)", b, installErr)
			}
			t.Skipf("%s missing: run scripts/install-cri.sh", b)
		}
	}
}

var stoppers []func()

func atExit(f func()) { stoppers = append(stoppers, f) }

func stopAll() {
	for i := len(stoppers) - 1; i >= 0; i-- {
		stoppers[i]()
	}
	stoppers = nil
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
func runCmd(t testing.TB, limit time.Duration, stdin []byte, name string, args ...string) result {
	t.Helper()
	return run1(t, limit, stdin, nil, name, args...)
}

// runCmdEnv is runCmd with env added to the environment.
func runCmdEnv(t testing.TB, limit time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	return run1(t, limit, nil, env, name, args...)
}

func run1(t testing.TB, limit time.Duration, stdin []byte, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	dir := t.TempDir()
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	defer out.Close()
	defer errf.Close()
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, errf, dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		ob, _ := os.ReadFile(out.Name())
		eb, _ := os.ReadFile(errf.Name())
		t.Fatalf("%s %v: still running after %s\nstdout: %s\nstderr: %s", name, args, limit, ob, eb)
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

// processesWith lists the pids whose command line contains every one of subs.
func processesWith(subs ...string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		all := true
		for _, s := range subs {
			all = all && bytes.Contains(b, []byte(s))
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// The daemons' host-state helpers, shared with the other daemon suite.
var (
	waitFor         = daemontest.WaitFor
	removeAll       = daemontest.RemoveAll
	stopProcess     = daemontest.StopProcess
	leftoverCgroups = daemontest.LeftoverCgroups
)
