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

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestV1ApplySetReadBack(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	r := &specs.LinuxResources{
		Devices: allowAll,
		Memory:  &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swappiness: ptr(uint64(10)), KernelTCP: ptr(int64(16 << 20))},
		CPU:     &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(10))},
	}
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, r, lay)
	c := startChild(t, "sleep", "100")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	if m.Version() != 1 {
		t.Errorf("Version() = %d on a v1/hybrid host, want 1", m.Version())
	}
	paths := m.Paths()
	tests := []struct {
		ctrl, file, want string
	}{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"memory", "memory.swappiness", "10"},
		{"memory", "memory.kmem.tcp.limit_in_bytes", strconv.Itoa(16 << 20)},
		{"pids", "pids.max", "10"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			dir := paths[tc.ctrl]
			if want := filepath.Join("/sys/fs/cgroup", tc.ctrl, name); dir != want {
				t.Fatalf("path of %s = %q, want %q", tc.ctrl, dir, want)
			}
			if tc.file == "memory.kmem.tcp.limit_in_bytes" {
				if _, err := os.Stat(filepath.Join(dir, tc.file)); err != nil {
					t.Skipf("skipping: kernel has no %s", tc.file)
				}
			}
			if got := readCgroupFile(t, dir, tc.file); got != tc.want {
				t.Fatalf("%s/%s = %q, want %q", dir, tc.file, got, tc.want)
			}
			if procs := readCgroupFile(t, dir, "cgroup.procs"); !strings.Contains("\n"+procs+"\n", "\n"+strconv.Itoa(c.pid())+"\n") {
				t.Fatalf("pid %d not in %s/cgroup.procs: %q", c.pid(), dir, procs)
			}
		})
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 1 || pids[0] != c.pid() {
		t.Fatalf("Pids() = %v, %v; want [%d]", pids, err, c.pid())
	}
	if !m.Exists() {
		t.Fatal("Exists() = false after Apply")
	}

	// An update that names only memory must not touch the device rules.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(32 << 20))}}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, paths["memory"], "memory.limit_in_bytes"); got != strconv.Itoa(32<<20) {
		t.Fatalf("memory limit after update = %s", got)
	}
	if got := readCgroupFile(t, paths["devices"], "devices.list"); got != "a *:* rwm" {
		t.Fatalf("devices.list after memory-only update = %q, want the earlier allow-all", got)
	}
}

// TestV1PidsLimitEnforced proves the limit is enforced by the kernel, not
// just written: a process in the cgroup forks until fork fails with EAGAIN.
func TestV1PidsLimitEnforced(t *testing.T) {
	lay := hostV1(t)
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("skipping: %s is needed to observe the fork errno", python)
	}
	name := testName(t)
	const limit = 10
	r := &specs.LinuxResources{Devices: allowAll, Pids: &specs.LinuxPids{Limit: ptr(int64(limit))}}
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, r, lay)
	c := startChild(t, python, "-c", `
import errno, os, sys, time
sys.stdin.readline()
n = 0
try:
    for i in range(50):
        pid = os.fork()
        if pid == 0:
            os.close(1)
            os.close(2)
            time.sleep(60)
            os._exit(0)
        n += 1
    print("no-error", n)
except OSError as e:
    print(errno.errorcode.get(e.errno), n)
sys.stdout.flush()
`)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	if err := c.wait(t, 20*time.Second); err != nil {
		t.Fatalf("python helper failed: %v, stderr %q", err, c.stderr.String())
	}
	out := strings.Fields(c.stdout.String())
	if len(out) != 2 || out[0] != "EAGAIN" {
		t.Fatalf("helper output %q: want fork to fail with EAGAIN", c.stdout.String())
	}
	if n, _ := strconv.Atoi(out[1]); n != limit-1 {
		t.Errorf("forked %d children before EAGAIN, want %d (limit %d minus the parent)", n, limit-1, limit)
	}
	if ev := readCgroupFile(t, m.Paths()["pids"], "pids.events"); ev == "max 0" {
		t.Errorf("pids.events = %q: kernel recorded no refused fork", ev)
	}
}

// TestV1DevicesDenyAllowNull checks the allowlist on a child in the cgroup:
// the test process itself stays outside, so it is not locked out.
func TestV1DevicesDenyAllowNull(t *testing.T) {
	m, c := startDeviceProbe(t, hostV1(t))
	if got := readCgroupFile(t, m.Paths()["devices"], "devices.list"); got != "c 1:3 rwm" {
		t.Fatalf("devices.list = %q, want only \"c 1:3 rwm\"", got)
	}
	checkNullOnly(t, c)
	// The test process is outside the cgroup and must still reach /dev/zero.
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatalf("test process lost /dev/zero: %v", err)
	}
	f.Close()
}

// TestV1DevicesListedInConfigOrder: the spec says device rules apply in the
// listed order, and devices.list shows the order they were written in
// (runtime-tools linux_cgroups_devices reads it back).
func TestV1DevicesListedInConfigOrder(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	dev := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: ptr(major), Minor: ptr(minor), Access: access}
	}
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		dev("c", 10, 229, "rwm"), dev("b", 8, 20, "rw"), dev("c", 1, 3, "rwm"), dev("b", 10, 200, "r"),
	}}
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, r, lay)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	want := "c 10:229 rwm\nb 8:20 rw\nc 1:3 rwm\nb 10:200 r"
	if got := readCgroupFile(t, m.Paths()["devices"], "devices.list"); got != want {
		t.Fatalf("devices.list = %q, want the config's order %q", got, want)
	}
}

// TestFirstSetWithoutDevicesDeniesAll pins the secure default.
func TestFirstSetWithoutDevicesDeniesAll(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, m.Paths()["devices"], "devices.list"); got != "" {
		t.Fatalf("devices.list = %q after a first Set without devices, want empty (deny all)", got)
	}
}

func TestV1FreezeThaw(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
	testFreezeThaw(t, m)
}

// testFreezeThaw puts a counting shell in m's cgroup and checks state reads
// and that a frozen process really stops making progress (the counter file
// stops changing) and resumes on thaw.
func testFreezeThaw(t *testing.T, m *Manager) {
	t.Helper()
	counter := filepath.Join(t.TempDir(), "counter")
	c := startShell(t, `read x; i=0; while :; do i=$((i+1)); echo $i > `+counter+`.tmp; mv `+counter+`.tmp `+counter+`; sleep 0.02; done`)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	// The loop starts only after Apply: a subprocess forked earlier would
	// stay outside the cgroup and keep writing while the cgroup is frozen.
	c.release(t)
	read := func() string {
		b, _ := os.ReadFile(counter)
		return string(b)
	}
	for deadline := time.Now().Add(5 * time.Second); read() == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("child never wrote its counter")
		}
	}
	if st, err := m.FreezerState(); err != nil || st != "THAWED" {
		t.Fatalf("FreezerState() = %q, %v; want THAWED", st, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if st, err := m.FreezerState(); err != nil || st != "FROZEN" {
		t.Fatalf("FreezerState() after Freeze = %q, %v; want FROZEN", st, err)
	}
	before := read()
	time.Sleep(300 * time.Millisecond)
	if after := read(); after != before {
		t.Fatalf("frozen process still made progress: %q -> %q", before, after)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if st, err := m.FreezerState(); err != nil || st != "THAWED" {
		t.Fatalf("FreezerState() after Thaw = %q, %v; want THAWED", st, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for read() == before {
		if time.Now().After(deadline) {
			t.Fatal("thawed process made no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestV1Stats(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	r := &specs.LinuxResources{Devices: allowAll, Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}, Pids: &specs.LinuxPids{Limit: ptr(int64(10))}}
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, r, lay)
	// The shell fills a variable after joining, so the memory is charged
	// to the new cgroup (pages touched before the move stay with the old).
	c := startShell(t, `read x; v=$(head -c 4000000 /dev/zero | tr '\0' a); echo ready; sleep 100`)
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	c.release(t)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.stdout.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("child never got ready: %q", c.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Usage.Usage < 1<<20 {
		t.Errorf("memory usage %d, want > 1MiB after the child filled 4MB", s.Memory.Usage.Usage)
	}
	if s.Memory.Usage.Limit != 64<<20 {
		t.Errorf("memory limit in stats %d, want %d", s.Memory.Usage.Limit, 64<<20)
	}
	if s.Memory.Usage.Max < s.Memory.Usage.Usage {
		t.Errorf("memory max usage %d < usage %d", s.Memory.Usage.Max, s.Memory.Usage.Usage)
	}
	if s.Pids.Current < 1 || s.Pids.Limit != 10 {
		t.Errorf("pids stats %+v, want current >= 1 and limit 10", s.Pids)
	}
	if s.CPU.Usage.Total == 0 {
		t.Errorf("cpu usage total is 0 after the child did work")
	}
}

func TestV1KillAll(t *testing.T) {
	lay := hostV1(t)
	tests := []struct {
		name   string
		paused bool
		sig    syscall.Signal
	}{
		{"running SIGKILL", false, syscall.SIGKILL},
		{"running SIGTERM", false, syscall.SIGTERM},
		// delete --force of a paused container: frozen tasks cannot die
		// until thawed, so KillAll must thaw for SIGKILL.
		{"paused SIGKILL", true, syscall.SIGKILL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := testName(t)
			m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
			c := startShell(t, `read x; sleep 100 & sleep 100 & wait`)
			if err := m.Apply(c.pid()); err != nil {
				t.Fatal(err)
			}
			c.release(t)
			deadline := time.Now().Add(5 * time.Second)
			for {
				pids, _ := m.Pids()
				if len(pids) == 3 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("expected 3 processes in the cgroup, have %v", pids)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tc.paused {
				if err := m.Freeze(); err != nil {
					t.Fatal(err)
				}
			}
			if err := m.KillAll(tc.sig); err != nil {
				t.Fatal(err)
			}
			c.wait(t, 5*time.Second)
			deadline = time.Now().Add(5 * time.Second)
			for {
				pids, err := m.Pids()
				if err != nil {
					t.Fatal(err)
				}
				if len(pids) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("processes %v survived KillAll(%v)", pids, tc.sig)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestV1LoadDestroy(t *testing.T) {
	lay := hostV1(t)
	id := testName(t)
	cfg := Config{ID: id} // default path: /bulwark/<id>
	m := newTestManager(t, cfg, nil, lay)
	c := startChild(t, "sleep", "100")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	if want := "/sys/fs/cgroup/memory/bulwark/" + id; m.Paths()["memory"] != want {
		t.Fatalf("default memory path %q, want %q", m.Paths()["memory"], want)
	}

	loaded, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := loaded.Paths(), m.Paths(); len(got) != len(want) || got["memory"] != want["memory"] || got["freezer"] != want["freezer"] {
		t.Fatalf("Load paths %v differ from New paths %v", got, want)
	}
	if pids, err := loaded.Pids(); err != nil || !containsPid(pids, c.pid()) {
		t.Fatalf("loaded.Pids() = %v, %v; want it to contain %d", pids, err, c.pid())
	}

	// Destroy with a live process must fail and say why.
	err = loaded.Destroy()
	if err == nil || !strings.Contains(err.Error(), "processes inside") {
		t.Fatalf("Destroy with a live process: err = %v, want a hint about processes inside", err)
	}
	if err := loaded.KillAll(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 5*time.Second)
	waitEmpty(t, loaded, 5*time.Second)
	for i := range 2 { // idempotent
		if err := loaded.Destroy(); err != nil {
			t.Fatalf("Destroy #%d: %v", i+1, err)
		}
	}
	if loaded.Exists() {
		t.Fatal("Exists() = true after Destroy")
	}
	for ctrl, p := range m.Paths() {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s cgroup %s left behind (%v)", ctrl, p, err)
		}
		// The default parent goes too unless another container uses it.
		if parent := filepath.Dir(p); len(mustReadDirs(parent)) == 0 {
			if _, err := os.Stat(parent); err == nil {
				t.Errorf("empty default parent %s left behind", parent)
			}
		}
	}
}

func mustReadDirs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestV1UnsupportedResources(t *testing.T) {
	lay := hostV1(t)
	name := testName(t)
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
	if err := m.Apply(-1); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		r       *specs.LinuxResources
		wantErr string
		skip    func() string
	}{
		{"unified on v1", &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}, "linux.resources.unified", nil},
		{"net_cls not mounted", &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(1))}}, "linux.resources.network.classID", func() string {
			if m.Paths()["net_cls"] != "" {
				return "net_cls is mounted here"
			}
			return ""
		}},
		{"net_prio not mounted", &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}}}}, "linux.resources.network.priorities", func() string {
			if m.Paths()["net_prio"] != "" {
				return "net_prio is mounted here"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != nil {
				if why := tc.skip(); why != "" {
					t.Skip("skipping: " + why)
				}
			}
			err := m.Set(tc.r)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Set: err = %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
	if _, err := New(Config{Path: "/" + name, ID: name}, &specs.LinuxResources{Unified: map[string]string{"a.b": "1"}}); err == nil || !strings.Contains(err.Error(), "cgroup v1") {
		t.Fatalf("New with unified on v1: err = %v", err)
	}
}

// TestHugetlbLimit covers both places hugetlb can live on a v1/hybrid host:
// a v1 hierarchy (the library writes it) or, on hybrid hosts where it is not
// mounted as v1, the cgroup2 side (Bulwark writes it there itself).
func TestHugetlbLimit(t *testing.T) {
	lay := hostV1(t)
	if _, err := os.Stat("/sys/kernel/mm/hugepages/hugepages-2048kB"); err != nil {
		t.Skip("skipping: no 2MB huge pages on this kernel")
	}
	name := testName(t)
	m := newTestManager(t, Config{Path: "/" + name, ID: name}, nil, lay)
	var dir, file string
	switch {
	case m.Paths()["hugetlb"] != "":
		dir, file = m.Paths()["hugetlb"], "hugetlb.2MB.limit_in_bytes"
	case m.hugetlbOnUnified():
		dir, file = m.Paths()[""], "hugetlb.2MB.max"
	default:
		t.Skip("skipping: hugetlb controller is neither a v1 hierarchy nor on cgroup2 here")
	}
	t.Logf("hugetlb limit goes to %s/%s", dir, file)
	c := startChild(t, "sleep", "100")
	if err := m.Apply(c.pid()); err != nil {
		t.Fatal(err)
	}
	r := &specs.LinuxResources{Devices: allowAll, HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}
	if err := m.Set(r); err != nil {
		t.Fatal(err)
	}
	if got := readCgroupFile(t, dir, file); got != strconv.Itoa(4<<20) {
		t.Fatalf("%s/%s = %q, want %d", dir, file, got, 4<<20)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Hugetlb["2MB"]; !ok {
		t.Fatalf("Stats().Hugetlb has no 2MB entry: %+v", s.Hugetlb)
	}
	bad := &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}}
	if err := m.Set(bad); err == nil || !strings.Contains(err.Error(), "3MB") {
		t.Fatalf("unsupported page size: err = %v, want an error naming 3MB", err)
	}
}
