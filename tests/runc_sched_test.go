package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// allowedCPUs is this process's Cpus_allowed_list: what a container's
// process gets once the caller's pinning is reset (the test's cgroup and
// the container's cpuset both span the host's CPUs).
func allowedCPUs(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			v = strings.TrimSpace(v)
			if v == "0" {
				t.Skip("this test needs two CPUs to pin the runtime to one of them")
			}
			return v
		}
	}
	t.Fatal("no Cpus_allowed_list in /proc/self/status")
	return ""
}

// pinned runs bulwark ARGS pinned to CPU 0 (taskset), as a shim or a
// script pinned to a housekeeping CPU would.
func (e *env) pinned(args ...string) (string, error) {
	e.t.Helper()
	cmd := exec.Command("taskset", append([]string{"-c", "0", bulwarkBin, "--root", e.root}, args...)...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

const cpusAllowed = "grep Cpus_allowed_list: /proc/self/status"

// A runtime started pinned to one CPU must not hand that pinning on to the
// container (runc resets it): its payload may run on every CPU its cpuset
// allows, for run and for exec.
func TestContainerDoesNotInheritTheCallersCPUAffinity(t *testing.T) {
	want := allowedCPUs(t)
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", cpusAllowed} })
	out, err := e.pinned("run", "-b", bundle, e.id())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Cpus_allowed_list:")); got != want {
		t.Errorf("run under taskset -c 0: the payload may run on %q, want %q (%q)", got, want, out)
	}
	id, _ := e.detached(nil)
	out, err = e.pinned("exec", id, "sh", "-c", cpusAllowed)
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "Cpus_allowed_list:")); got != want {
		t.Errorf("exec under taskset -c 0: the process may run on %q, want %q (%q)", got, want, out)
	}
}

// process.execCPUAffinity.final pins an exec'd process once it is in the
// container, from config.json (an exec without --process inherits it) and
// from --process; a list the kernel cannot use fails the exec with the
// field's name.
func TestExecCPUAffinityIsApplied(t *testing.T) {
	allowedCPUs(t)
	e := newEnv(t)
	id, _ := e.detached(func(s *specs.Spec) {
		s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "1"}
	})
	if out := e.mustOK("exec", id, "sh", "-c", cpusAllowed); !strings.Contains(out, "\t1\n") {
		t.Errorf("exec with config.json's execCPUAffinity.final 1: %q", out)
	}
	proc := func(aff *specs.CPUAffinity) string {
		p := specs.Process{Args: []string{"sh", "-c", cpusAllowed}, Cwd: "/", ExecCPUAffinity: aff,
			Env: []string{"PATH=/bin:/usr/bin"}}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if out := e.mustOK("exec", "--process", proc(&specs.CPUAffinity{Initial: "1", Final: "0"}), id); !strings.Contains(out, "\t0\n") {
		t.Errorf("exec --process with execCPUAffinity.final 0: %q", out)
	}
	r := e.bw("exec", "--process", proc(&specs.CPUAffinity{Final: "4000"}), id)
	if r.code == 0 || !strings.Contains(r.stderr, "process.execCPUAffinity.final") {
		t.Errorf("an execCPUAffinity.final of an absent CPU must fail naming the field: %v", r)
	}
}

// process.scheduler and process.ioPriority reach the payload (runc sets
// them with sched_setattr and ioprio_set); they were accepted and ignored.
func TestSchedulerAndIOPriorityAreApplied(t *testing.T) {
	e := newEnv(t)
	mutate := func(s *specs.Spec) {
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	}
	// /proc/PID/stat: field 19 is nice, 41 the policy (3: SCHED_BATCH).
	script := `awk '{print "nice=" $19; print "policy=" $41}' /proc/self/stat; echo "io=$(ionice -p $$)"`
	got := kv(e.mustSh(mutate, script))
	if got["nice"] != "5" || got["policy"] != "3" || got["io"] != "best-effort: prio 6" {
		t.Errorf("run with SCHED_BATCH nice 5 and best-effort 6: %v", got)
	}
	id, _ := e.detached(mutate)
	got = kv(e.mustOK("exec", id, "sh", "-c", script))
	if got["nice"] != "5" || got["policy"] != "3" || got["io"] != "best-effort: prio 6" {
		t.Errorf("exec with SCHED_BATCH nice 5 and best-effort 6: %v", got)
	}
	r := e.sh(func(s *specs.Spec) {
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1, Deadline: 1, Period: 1}
	}, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "process.scheduler") {
		t.Errorf("a SCHED_DEADLINE the kernel refuses must fail naming process.scheduler: %v", r)
	}
}

// TestSchedDeadlineWithACpusetFailsInRuncsWords: the kernel refuses
// SCHED_DEADLINE to a thread whose affinity does not span every CPU
// (sched_setattr(2), EPERM); the error names process.scheduler and the
// cpuset, and holds runc's words for it, which scripts match (runc's
// "scheduler vs cpus").
func TestSchedDeadlineWithACpusetFailsInRuncsWords(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs: a cpuset of one must leave one out")
	}
	testrootfs.RequireCgroupV1Controller(t, "cpuset")
	e := newEnv(t)
	r := e.sh(func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "0"}
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedDeadline, Nice: 19, Runtime: 42000, Deadline: 1000000, Period: 1000000}
	}, "true")
	for _, w := range []string{"process.scheduler", "process scheduler can't be used together with AllowedCPUs", `linux.resources.cpu.cpus "0"`} {
		if r.code == 0 || !strings.Contains(r.stderr, w) {
			t.Errorf("SCHED_DEADLINE with cpus 0: want a failure saying %q: %v", w, r)
		}
	}
}

// linux.memoryPolicy is set with set_mempolicy (it was refused), and
// `features` lists its modes and flags.
func TestMemoryPolicyIsApplied(t *testing.T) {
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skip("the kernel has no NUMA support (no /proc/self/numa_maps)")
	}
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes}}
	}, "head -1 /proc/self/numa_maps")
	if !strings.Contains(out, "bind=static:0") {
		t.Errorf("MPOL_BIND|MPOL_F_STATIC_NODES on node 0: numa_maps says %q", out)
	}
	var f struct {
		Linux struct {
			MemoryPolicy struct{ Modes, Flags []string } `json:"memoryPolicy"`
		} `json:"linux"`
	}
	if err := json.Unmarshal([]byte(e.mustOK("features")), &f); err != nil {
		t.Fatal(err)
	}
	if !contains(f.Linux.MemoryPolicy.Modes, "MPOL_BIND") || !contains(f.Linux.MemoryPolicy.Flags, "MPOL_F_STATIC_NODES") {
		t.Errorf("features: linux.memoryPolicy = %+v", f.Linux.MemoryPolicy)
	}
}
