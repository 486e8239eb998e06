package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// cgroupFile reads a file of the container's v1 cgroup for controller, found
// from the host's view of the init's /proc/PID/cgroup.
func cgroupFile(t *testing.T, pid, controller, file string) (string, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) == 3 && contains(strings.Split(f[1], ","), controller) {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, f[2], file))
			if err != nil {
				return "", false
			}
			return strings.TrimSpace(string(v)), true
		}
	}
	return "", false
}

// detached starts a sleeping container changed by mutate and returns its
// id and init pid.
func (e *env) detached(mutate func(*specs.Spec)) (string, string) {
	e.t.Helper()
	bundle := testrootfs.Bundle(e.t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		if mutate != nil {
			mutate(s)
		}
	})
	id := e.id()
	pidFile := filepath.Join(e.t.TempDir(), "pid")
	e.mustOK("run", "-d", "-b", bundle, "--pid-file", pidFile, id)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, string(b)
}

// containerd hands a runtime started without --systemd-cgroup a path like
// "test.slice:cri-containerd:ID" when the pod's parent is a *.slice; runc
// takes it as a literal cgroup name, and so must we.
func TestConfigSystemdStylePathWithoutTheDriverIsALiteralCgroup(t *testing.T) {
	e := newEnv(t)
	name := "bwt.slice:cri-containerd:" + strconv.Itoa(os.Getpid())
	e.ids = append(e.ids, name)
	id, pid := e.detached(func(s *specs.Spec) { s.Linux.CgroupsPath = name })
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), ":/"+name+"\n") {
		t.Fatalf("cgroupsPath %q not in the init's cgroups:\n%s", name, b)
	}
	e.mustOK("delete", "--force", id)
}

// containerd's shim treats a kill that fails with runc's "container not
// running" as "already gone"; any other wording turns a stop that races
// the container's exit into a hard error.
func TestKillOfAnExitedContainerSaysContainerNotRunning(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	e.mustOK("start", id)
	deadline := time.Now().Add(10 * time.Second)
	for e.state(id)["status"] != "stopped" {
		if time.Now().After(deadline) {
			t.Fatalf("container running `true` did not stop: %v", e.state(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := e.bw("kill", id, "KILL")
	if r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Fatalf("kill of an exited container: want an error with runc's \"container not running\": %v", r)
	}
}

func TestConfigMemoryLimitKillsAMemoryBomb(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "memory")
	e := newEnv(t)
	limit := int64(32 << 20)
	r := e.runIn(func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	}, "/usr/local/bin/membomb", "256")
	if r.code != 137 {
		t.Fatalf("membomb of 256 MiB under a 32 MiB limit: %v, want exit 137 (SIGKILL by the OOM killer)", r)
	}
	n := strings.Count(r.stdout, "allocated ")
	if n == 0 || n >= 32 {
		t.Fatalf("membomb allocated %d MiB under a 32 MiB limit", n)
	}
}

func TestConfigPidsLimitStopsAForkBomb(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "pids")
	e := newEnv(t)
	limit := int64(16)
	r := e.runIn(func(s *specs.Spec) {
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
	}, "/usr/local/bin/forkbomb", "200")
	var out struct {
		Forked int    `json:"forked"`
		Result string `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("forkbomb: %v: %v", err, r)
	}
	// pids counts tasks: the payload's own Go threads take some of the 16.
	if out.Result != "EAGAIN" || out.Forked < 1 || out.Forked >= 16 {
		t.Fatalf("fork bomb under pids.max=16: forked %d, stopped by %q; want fewer than 16 and EAGAIN", out.Forked, out.Result)
	}
}

func TestConfigResourcesAreWrittenToTheContainersCgroup(t *testing.T) {
	e := newEnv(t)
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	maj, min := int64(unix.Major(st.Dev)), int64(unix.Minor(st.Dev))
	for _, tc := range []struct {
		name, controller, file, want string
		set                          func(r *specs.LinuxResources)
	}{
		{"cpu shares", "cpu", "cpu.shares", "512", func(r *specs.LinuxResources) { r.CPU = &specs.LinuxCPU{Shares: ptr(uint64(512))} }},
		{"cpu quota", "cpu", "cpu.cfs_quota_us", "50000", func(r *specs.LinuxResources) {
			r.CPU = &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}
		}},
		{"cpu period", "cpu", "cpu.cfs_period_us", "100000", func(r *specs.LinuxResources) {
			r.CPU = &specs.LinuxCPU{Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}
		}},
		{"cpuset", "cpuset", "cpuset.cpus", "0", func(r *specs.LinuxResources) { r.CPU = &specs.LinuxCPU{Cpus: "0"} }},
		{"memory", "memory", "memory.limit_in_bytes", "67108864", func(r *specs.LinuxResources) { r.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20))} }},
		{"pids", "pids", "pids.max", "42", func(r *specs.LinuxResources) { r.Pids = &specs.LinuxPids{Limit: ptr(int64(42))} }},
		{"blkio throttle", "blkio", "blkio.throttle.read_bps_device", fmt.Sprintf("%d:%d 1048576", maj, min), func(r *specs.LinuxResources) {
			r.BlockIO = &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: maj, Minor: min}, Rate: 1 << 20}}}
		}},
		{"hugetlb", "hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304", func(r *specs.LinuxResources) {
			r.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testrootfs.RequireCgroupV1Controller(t, tc.controller)
			// Check on the host that the file exists at all (kernel config,
			// hugepage sizes, blkio policy) before blaming the runtime.
			// The root cgroup lacks some files (pids.max): look one level down.
			if m, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", tc.controller, "*", tc.file)); len(m) == 0 {
				if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", tc.controller, tc.file)); err != nil {
					t.Skipf("this host's %s controller has no %s", tc.controller, tc.file)
				}
			}
			id, pid := e.detached(func(s *specs.Spec) { tc.set(s.Linux.Resources) })
			got, ok := cgroupFile(t, pid, tc.controller, tc.file)
			if !ok || got != tc.want {
				t.Fatalf("%s of the container: %q (found %v), want %q", tc.file, got, ok, tc.want)
			}
			e.mustOK("delete", "--force", id)
		})
	}
}

func TestConfigCgroupsPathIsHonoured(t *testing.T) {
	e := newEnv(t)
	name := "bwt-cgpath-" + strconv.Itoa(os.Getpid())
	e.ids = append(e.ids, name) // assertNoLeftovers looks for it by name
	id, pid := e.detached(func(s *specs.Spec) { s.Linux.CgroupsPath = "/" + name + "/inner" })
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(l, ":", 3)
		if f[1] == "" && f[0] == "0" && !strings.HasPrefix(f[2], "/"+name) {
			continue // the unified hierarchy of a hybrid host may be unmanaged
		}
		if strings.HasSuffix(f[2], "/"+name+"/inner") {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("cgroupsPath /%s/inner not in the init's cgroups:\n%s", name, b)
	}
	e.mustOK("delete", "--force", id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", name, "inner")); !os.IsNotExist(err) {
		t.Fatalf("cgroup left after delete: %v", err)
	}
	// The parent we named was created for us; runc leaves such parents,
	// and so may we, but not on this host after the test.
	for _, c := range []string{"pids", "memory", "cpu", "cpuacct", "cpuset", "devices", "freezer", "blkio", "hugetlb", "systemd", "unified"} {
		syscall.Rmdir(filepath.Join("/sys/fs/cgroup", c, name))
	}
}

func TestConfigUnifiedResourcesOnAV1HostAreRefused(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "memory")
	e := newEnv(t)
	r := e.runIn(func(s *specs.Spec) {
		s.Linux.Resources.Unified = map[string]string{"memory.max": "1000000"}
	}, "true")
	// The field, and runc's "invalid configuration", which scripts match.
	if r.code == 0 || !strings.Contains(r.stderr, "linux.resources.unified") || !strings.Contains(r.stderr, "invalid configuration") {
		t.Fatalf("linux.resources.unified on a cgroup v1 host: %v", r)
	}
}

// update --pids-limit 0 is a limit, as in runc >= 1.4 (the cgroup gets the
// smallest value, 1), never a silent "max".
func TestUpdatePidsLimitZeroDoesNotLiftTheLimit(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "pids")
	e := newEnv(t)
	id, pid := e.detached(nil)
	e.mustOK("update", "--pids-limit", "0", id)
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "pids" {
			dir = filepath.Join("/sys/fs/cgroup/pids", f[2])
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "pids.max"))
	if err != nil {
		t.Fatalf("pids cgroup of the init: %v\n%s", err, b)
	}
	if v := strings.TrimSpace(string(got)); v != "1" {
		t.Fatalf("after update --pids-limit 0, pids.max = %q, want 1 (runc's value)", v)
	}
}

// linux.resources.pids.limit 0 is a limit, as in runc >= 1.4: the container
// runs with pids.max 1 (runc's value, systemd's TasksMax has no 0), so its
// one process cannot fork. The init used to die at create, its Go runtime
// unable to start a thread under that limit.
func TestCreatePidsLimitZeroRunsWithPidsMaxOne(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "pids")
	e := newEnv(t)
	zero := func(s *specs.Spec) { s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(0))} }
	id, pid := e.detached(zero)
	if got, ok := cgroupFile(t, pid, "pids", "pids.max"); !ok || got != "1" {
		t.Fatalf("pids.limit 0: pids.max = %q (found %v), want 1", got, ok)
	}
	if st := e.state(id)["status"]; st != "running" {
		t.Fatalf("pids.limit 0: container is %v, want running", st)
	}
	r := e.runIn(zero, "sh", "-c", "x=$(echo forked); echo \"$x\"")
	if r.code == 0 || strings.Contains(r.stdout, "forked") {
		t.Fatalf("a fork under pids.limit 0 succeeded: %v", r)
	}
}

// A cgroup that already holds another container's processes is refused, as
// runc >= 1.2 refuses it (1.1 warned), in runc's words; the other container
// is left running, its cgroup in place.
func TestCreateInACgroupInUseIsRefused(t *testing.T) {
	e := newEnv(t)
	path := "/bwt-shared-" + strconv.Itoa(os.Getpid())
	shared := func(s *specs.Spec) { s.Linux.CgroupsPath = path }
	first, pid := e.detached(shared)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		shared(s)
	})
	for _, cmd := range []string{"run", "create"} {
		r := e.bw(cmd, "-b", bundle, e.id())
		if r.code == 0 || !strings.Contains(r.stderr, "container's cgroup is not empty") {
			t.Fatalf("%s in the cgroup of a running container: %v", cmd, r)
		}
	}
	if st := e.state(first)["status"]; st != "running" {
		t.Fatalf("the first container is %v after the refused ones, want running", st)
	}
	if n, _ := strconv.Atoi(pid); n <= 0 || unix.Kill(n, 0) != nil {
		t.Fatalf("the first container's init %q is gone", pid)
	}
}

// A frozen cgroup makes run and create fail at once with runc's words
// ("container's cgroup unexpectedly frozen"), where the init used to stop
// in it and the command never returned; a cgroup under a frozen parent is
// frozen from birth and refused too.
func TestCreateInAFrozenCgroupFailsAtOnce(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "freezer")
	e := newEnv(t)
	parent := "bwt-frozen-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join("/sys/fs/cgroup/freezer", parent)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		os.Remove(dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("FROZEN"), 0); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/" + parent, "/" + parent + "/child"} {
		bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Process.Args = []string{"true"}
			s.Linux.CgroupsPath = path
		})
		for _, cmd := range []string{"run", "create"} {
			start := time.Now()
			r := e.bw(cmd, "-b", bundle, e.id())
			if r.code == 0 || !strings.Contains(r.stderr, "container's cgroup unexpectedly frozen") {
				t.Fatalf("%s in %s: %v", cmd, path, r)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("%s in %s took %s to fail", cmd, path, d)
			}
		}
	}
}
