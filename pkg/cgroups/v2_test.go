package cgroups

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lib "github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v2Layout returns a cgroup v2 layout to test against: the host's own on a
// pure v2 host, or the unified side of a hybrid host (the library can be
// pointed at any cgroup2 directory, and freezing, cgroup.kill and eBPF device
// filters work there without any controller).
func v2Layout(t *testing.T) layout {
	t.Helper()
	requireRoot(t)
	if lay := detectLayout(); lay.v2 {
		return lay
	}
	var st unix.Statfs_t
	if err := unix.Statfs(hybridMountpoint, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skipf("skipping: no cgroup2 mount at %s or %s", unifiedMountpoint, hybridMountpoint)
	}
	return layout{v2: true, unifiedRoot: hybridMountpoint}
}

// needControllers skips when the cgroup2 root does not offer ctrls.
func needControllers(t *testing.T, lay layout, ctrls ...string) {
	t.Helper()
	avail, err := lib.ReadFile(lay.unifiedRoot, "cgroup.controllers")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrls {
		if !hasField(avail, c) {
			t.Skipf("skipping: controller %q is not available on the cgroup2 hierarchy %s (available: %q); on this host it is bound to cgroup v1", c, lay.unifiedRoot, strings.TrimSpace(avail))
		}
	}
}

func TestV2ApplyPidsVersion(t *testing.T) {
	lay := v2Layout(t)
	id := testName(t)
	m := newTestManager(t, Config{ID: id}, nil, lay)
	c := startChild(t, "sleep", "100")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(lay.unifiedRoot, "bulwark", id)
	if got := m.Paths(); len(got) != 1 || got[""] != dir {
		t.Fatalf("Paths() = %v, want only \"\" -> %s", got, dir)
	}
	if m.Version() != 2 {
		t.Fatalf("Version() = %d, want 2", m.Version())
	}
	if procs := readCgroupFile(t, dir, "cgroup.procs"); procs != strconv.Itoa(c.pid()) {
		t.Fatalf("%s/cgroup.procs = %q, want %d", dir, procs, c.pid())
	}
	if pids, err := m.Pids(); err != nil || len(pids) != 1 || pids[0] != c.pid() {
		t.Fatalf("Pids() = %v, %v", pids, err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats(): %v", err)
	}
	if s.Pids.Current != 1 {
		t.Errorf("Stats().Pids.Current = %d, want 1 (the sleep)", s.Pids.Current)
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 5*time.Second)
	waitEmpty(t, m, 5*time.Second)
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) && len(mustReadDirs(p)) == 0 {
			t.Errorf("%s left behind after Destroy", p)
		}
	}
}

func TestV2FreezeThaw(t *testing.T) {
	lay := v2Layout(t)
	name := testName(t)
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
	testFreezeThaw(t, m)
	if got := readCgroupFile(t, m.Paths()[""], "cgroup.freeze"); got != "0" {
		t.Fatalf("cgroup.freeze = %q after Thaw", got)
	}
}

// TestV2DevicesEBPF: the child is only in the cgroup2 directory (its v1
// devices cgroup, if any, allows everything), so a denied /dev/zero proves
// the eBPF program does the enforcing.
func TestV2DevicesEBPF(t *testing.T) {
	_, c := startDeviceProbe(t, v2Layout(t))
	checkNullOnly(t, c)
}

func TestV2KillAll(t *testing.T) {
	lay := v2Layout(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			name := testName(t)
			m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
			c := startShell(t, `read x; sleep 100 & sleep 100 & wait`)
			if err := m.Apply(c.pid()); err != nil {
				t.Fatal(err)
			}
			c.release(t)
			deadline := time.Now().Add(5 * time.Second)
			for pids, _ := m.Pids(); len(pids) != 3; pids, _ = m.Pids() {
				if time.Now().After(deadline) {
					t.Fatalf("expected 3 processes, have %v", pids)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := m.KillAll(sig); err != nil {
				t.Fatal(err)
			}
			c.wait(t, 5*time.Second)
			deadline = time.Now().Add(5 * time.Second)
			for pids, _ := m.Pids(); len(pids) != 0; pids, _ = m.Pids() {
				if time.Now().After(deadline) {
					t.Fatalf("processes %v survived KillAll(%v)", pids, sig)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestV2Limits(t *testing.T) {
	lay := v2Layout(t)
	tests := []struct {
		name  string
		ctrls []string
		r     *specs.LinuxResources
		file  string
		want  string
	}{
		{"memory", []string{"memory"}, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}}, "memory.max", strconv.Itoa(64 << 20)},
		{"pids", []string{"pids"}, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}}, "pids.max", "10"},
		// 512, not the default 1024: its weight differs from the kernel's
		// default of 100, so a shares value that is never written fails.
		{"cpu shares to weight", []string{"cpu"}, &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(512))}}, "cpu.weight", strconv.FormatUint(lib.ConvertCPUSharesToCgroupV2Value(512), 10)},
		{"hugetlb", []string{"hugetlb"}, &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}, "hugetlb.2MB.max", strconv.Itoa(4 << 20)},
		{"unified", []string{"memory"}, &specs.LinuxResources{Unified: map[string]string{"memory.high": "33554432"}}, "memory.high", "33554432"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needControllers(t, lay, tc.ctrls...)
			name := testName(t)
			m := newTestManager(t, Config{Path: "/" + name, ID: name}, tc.r, lay)
			c := startChild(t, "sleep", "100")
			if err := m.Apply(c.pid()); err != nil {
				t.Fatal(err)
			}
			tc.r.Devices = allowAll
			if err := m.Set(tc.r); err != nil {
				t.Fatal(err)
			}
			if got := readCgroupFile(t, m.Paths()[""], tc.file); got != tc.want {
				t.Fatalf("%s = %q, want %q", tc.file, got, tc.want)
			}
		})
	}
}

// TestV2MissingControllerErrors: where a controller is absent, Set must
// fail loudly instead of running the container without the limit.
func TestV2MissingControllerErrors(t *testing.T) {
	lay := v2Layout(t)
	avail, _ := lib.ReadFile(lay.unifiedRoot, "cgroup.controllers")
	tests := []struct {
		ctrl string
		r    *specs.LinuxResources
	}{
		{"memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}}},
		{"pids", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}}},
	}
	for _, tc := range tests {
		t.Run(tc.ctrl, func(t *testing.T) {
			if hasField(avail, tc.ctrl) {
				t.Skipf("skipping: %s is available on cgroup2 here; TestV2Limits covers it", tc.ctrl)
			}
			name := testName(t)
			m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
			if err := m.Apply(-1); err != nil {
				t.Fatal(err)
			}
			tc.r.Devices = allowAll
			err := m.Set(tc.r)
			if err == nil || !strings.Contains(err.Error(), m.Paths()[""]) {
				t.Fatalf("Set(%s) without the controller: err = %v, want an error naming the cgroup", tc.ctrl, err)
			}
		})
	}
	t.Run("network", func(t *testing.T) {
		name := testName(t)
		m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
		err := m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(1))}})
		if err == nil || !strings.Contains(err.Error(), "linux.resources.network") {
			t.Fatalf("network on v2: err = %v", err)
		}
	})
}
