package cgroups

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	lib "github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMain fails the run if any test left a cgroup behind: leaks of test
// cgroups are exactly the bug Destroy must not have.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		if left := findLeftovers(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: test cgroups left behind:\n  %s\n", strings.Join(left, "\n  "))
			code = 1
		}
	}
	os.Exit(code)
}

func findLeftovers() []string {
	var left []string
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && strings.Contains(d.Name(), "bulwark-test") {
			left = append(left, p)
			return filepath.SkipDir
		}
		return nil
	})
	return left
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create cgroups")
	}
}

// testName gives each test cgroup a unique name that is visible in
// `find /sys/fs/cgroup -name '*bulwark-test*'` should it leak.
func testName(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "bulwark-test-" + hex.EncodeToString(b)
}

func ptr[T any](v T) *T { return &v }

// allowAll keeps tests that are not about devices from tripping over the
// deny-by-default of the first Set.
var allowAll = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}

// newTestManager makes a manager and registers cleanup that kills whatever
// is in the cgroup, destroys it and checks that nothing is left. Register it
// before starting children so its cleanup runs after theirs.
func newTestManager(t *testing.T, cfg Config, r *specs.LinuxResources, lay layout) *Manager {
	t.Helper()
	m, err := newManager(cfg, r, lay, false)
	if err != nil {
		t.Fatalf("newManager(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { destroyAndCheck(t, m) })
	return m
}

func destroyAndCheck(t *testing.T, m *Manager) {
	t.Helper()
	if m.Exists() {
		if err := m.KillAll(syscall.SIGKILL); err != nil {
			t.Errorf("cleanup KillAll: %v", err)
		}
		waitEmpty(t, m, 5*time.Second)
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("cleanup Destroy: %v", err)
	}
	for k, p := range m.Paths() {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("cleanup: cgroup %q (%s) still exists after Destroy", k, p)
		}
	}
}

func waitEmpty(t *testing.T, m *Manager, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		pids, err := m.Pids()
		if err != nil || len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("cgroup still has pids %v after %v", pids, d)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// child is a process the test moves into a cgroup. Scripts that must run
// inside the cgroup start with "read x": the test releases them after Apply.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

func startChild(t *testing.T, name string, args ...string) *child {
	t.Helper()
	c := &child{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(name, args...)
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	// Grandchildren may keep the output pipes open after the child dies.
	c.cmd.WaitDelay = time.Second
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("child %d did not exit after SIGKILL", c.cmd.Process.Pid)
		}
	})
	return c
}

func startShell(t *testing.T, script string) *child {
	return startChild(t, "/bin/sh", "-c", script)
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatalf("release child: %v", err)
	}
}

func (c *child) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // let the cleanup see it too
		return err
	case <-time.After(d):
		t.Fatalf("child did not finish within %v; stdout %q stderr %q", d, c.stdout.String(), c.stderr.String())
		return nil
	}
}

func readCgroupFile(t *testing.T, dir, file string) string {
	t.Helper()
	s, err := lib.ReadFile(dir, file)
	if err != nil {
		t.Fatalf("read %s/%s: %v", dir, file, err)
	}
	return strings.TrimSpace(s)
}

func containsPid(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// hybridV1 returns the host layout when it is v1 or hybrid, or skips.
func hostV1(t *testing.T) layout {
	t.Helper()
	requireRoot(t)
	lay := detectLayout()
	if lay.v2 {
		t.Skip("skipping: host is cgroup v2 only; v1 behaviour cannot be tested here")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("skipping: cgroup v1 memory controller is not mounted at /sys/fs/cgroup/memory")
	}
	return lay
}

// startDeviceProbe puts a shell in a new cgroup whose device rules deny all
// but /dev/null; once released, it reports whether it can open /dev/null
// and /dev/zero (checkNullOnly).
func startDeviceProbe(t *testing.T, lay layout) (*Manager, *child) {
	name := testName(t)
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	}}
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, r, lay)
	c := startShell(t, `read x
(: > /dev/null) 2>/dev/null && echo null:ok || echo null:denied
(: < /dev/zero) 2>/dev/null && echo zero:ok || echo zero:denied`)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	return m, c
}

func checkNullOnly(t *testing.T, c *child) {
	t.Helper()
	c.release(t)
	if err := c.wait(t, 10*time.Second); err != nil {
		t.Fatalf("shell: %v (stderr %q)", err, c.stderr.String())
	}
	if got := strings.TrimSpace(c.stdout.String()); got != "null:ok\nzero:denied" {
		t.Fatalf("inside the cgroup: %q, want null allowed and zero denied", got)
	}
}
