package tests

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// update sets cpu.idle both ways, from --cpu-idle and from -r (runc's
// update.bats "update cgroup cpu.idle"), also for a container created with
// CPU shares, as every engine's is: the kernel refuses cpu.shares (and
// cpu.weight) while the group is idle, so an update that wrote the stored
// shares again could never take idle back to 0. Values the kernel ignores
// are refused, and updating another CPU field leaves cpu.idle alone.
func TestUpdateCPUIdleBothWays(t *testing.T) {
	e := newEnv(t)
	id, pid := e.detached(func(s *specs.Spec) {
		shares := uint64(512)
		s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares}
	})
	idle := func() string {
		t.Helper()
		v, ok := cgroupFile(t, pid, "cpu", "cpu.idle")
		if !ok {
			t.Skip("the kernel has no cpu.idle (fair group SCHED_IDLE, Linux 5.15+) in the container's cpu cgroup")
		}
		return v
	}
	if v := idle(); v != "0" {
		t.Fatalf("cpu.idle starts at %q, want 0", v)
	}
	for _, val := range []string{"1", "0", "1"} {
		if r := e.bwIn([]byte(`{"cpu": {"idle": `+val+`}}`), "update", "-r", "-", id); r.code != 0 {
			t.Fatalf("update -r - cpu.idle %s: %v", val, r)
		}
		if v := idle(); v != val {
			t.Errorf("after update -r - {cpu: {idle: %s}}, cpu.idle = %s", val, v)
		}
	}
	for _, val := range []string{"1", "0", "1"} {
		e.mustOK("update", "--cpu-idle", val, id)
		if v := idle(); v != val {
			t.Errorf("after update --cpu-idle %s, cpu.idle = %s", val, v)
		}
	}
	for _, val := range []string{"-1", "2", "3"} {
		if r := e.bw("update", "--cpu-idle", val, id); r.code == 0 || !strings.Contains(r.stderr, "idle") {
			t.Errorf("update --cpu-idle %s must fail naming the field: %v", val, r)
		}
		if v := idle(); v != "1" {
			t.Errorf("a refused update --cpu-idle %s changed cpu.idle to %s", val, v)
		}
	}
	e.mustOK("update", "--cpu-period", "10000", id)
	if v := idle(); v != "1" {
		t.Errorf("update --cpu-period changed cpu.idle to %s", v)
	}
}
