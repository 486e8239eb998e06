package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// These tests pin behaviour the OCI runtime-tools validation suite checks
// (conformance/run.sh), so that a regression shows up in `go test` too.

// The suite's default seccomp profile is an allowlist that predates
// close_range. Without no_new_privs the filter is loaded while the init still
// has its privileges, before its own fd cleanup: that cleanup must not be
// subject to the payload's filter.
func TestSeccompWithoutNNPNeedNotAllowCloseRange(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{
				Names:  []string{"close_range"},
				Action: specs.ActErrno,
			}},
		}
	}, "echo ran")
	if !strings.Contains(out, "ran") {
		t.Fatalf("container output %q, want \"ran\"", out)
	}
}

// A filter denying getcwd must not break the check that process.cwd lies
// inside the container (runtime-tools linux_seccomp), with or without
// no_new_privs (which decides whether the filter goes in before the check).
func TestSeccompDenyingGetcwdStillRuns(t *testing.T) {
	for _, nnp := range []bool{false, true} {
		e := newEnv(t)
		out := e.mustSh(func(s *specs.Spec) {
			s.Process.NoNewPrivileges = nnp
			s.Process.Cwd = "/tmp"
			s.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
			}
		}, "echo ran")
		if out != "ran" {
			t.Fatalf("nnp=%v: container output %q, want \"ran\"", nnp, out)
		}
	}
}

func hookScript(script string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", script}}
}

// prestart hooks read "created" from the state on stdin (runtime-tools
// hooks_stdin; crun does the same), createRuntime ones "creating".
func TestPrestartHookSeesCreated(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	pre, cr := filepath.Join(dir, "prestart"), filepath.Join(dir, "createRuntime")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{
			//lint:ignore SA1019 prestart is deprecated but engines and the conformance suite still use it
			Prestart:      []specs.Hook{hookScript("cat > " + pre)},
			CreateRuntime: []specs.Hook{hookScript("cat > " + cr)},
		}
	})
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	for file, want := range map[string]string{pre: "created", cr: "creating"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var st specs.State
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s: %v: %s", file, err, b)
		}
		if st.Status != specs.ContainerState(want) || st.ID != id || st.Pid == 0 {
			t.Fatalf("%s hook got %+v, want status %q", filepath.Base(file), st, want)
		}
	}
}

// `start` returns only once the payload has been executed, so poststart
// hooks follow it (runtime-tools poststart). A startContainer hook that
// sleeps holds the init between releasing start and execve: the init must
// already be the payload when start returns.
func TestStartReturnsAfterThePayloadIsExecuted(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "1"}}}}
	})
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	pid := strconv.Itoa(int(e.state(id)["pid"].(float64)))
	e.mustOK("start", id)
	comm, err := os.ReadFile("/proc/" + pid + "/comm")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != "sleep" {
		t.Fatalf("right after start the init is %q, want the payload \"sleep\"", got)
	}
}

// A failing poststart or poststop hook is logged; the hooks after it still
// run and the operation succeeds (runtime-tools poststart_fail, poststop_fail).
func TestFailingPoststartAndPoststopHooksDoNotStopTheRest(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	post, stop := filepath.Join(dir, "poststart"), filepath.Join(dir, "poststop")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{
			Poststart: []specs.Hook{{Path: "/bin/false"}, hookScript("echo ran > " + post)},
			Poststop:  []specs.Hook{{Path: "/bin/false"}, hookScript("echo ran > " + stop)},
		}
	})
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	if r := e.bw("start", id); r.code != 0 || !strings.Contains(r.stderr, "poststart hook [0] /bin/false") {
		t.Fatalf("start with a failing poststart hook: %v", r)
	}
	waitStatus(t, e, id, "stopped")
	if r := e.bw("delete", id); r.code != 0 || !strings.Contains(r.stderr, "poststop hook [0] /bin/false") {
		t.Fatalf("delete with a failing poststop hook: %v", r)
	}
	for _, f := range []string{post, stop} {
		if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != "ran" {
			t.Fatalf("%s: the hook after the failing one did not run (%q, %v)", filepath.Base(f), b, err)
		}
	}
}

// A FIFO in linux.devices is created but has no place in the devices cgroup
// (runtime-tools linux_devices).
func TestFifoDeviceIsCreated(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/test-fifo", Type: "p", FileMode: ptrMode(0o644)}}
	}, "test -p /dev/test-fifo && echo fifo")
	if out != "fifo" {
		t.Fatalf("container output %q, want \"fifo\"", out)
	}
}

func ptrMode(m os.FileMode) *os.FileMode { return &m }

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], real+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// Without a mount namespace in the config the container shares the host's
// (runtime-tools linux_ns_itype): its mounts are made in the host's table,
// exec lands in its root, and delete leaves nothing mounted. What would
// change the host's own mounts is refused.
func TestNoMountNamespaceSharesTheHostsAndCleansUp(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		s.Linux.Namespaces = without(s.Linux.Namespaces, specs.MountNamespace)
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Root.Readonly = false
	})
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	pid := strconv.Itoa(int(e.state(id)["pid"].(float64)))
	if got, want := nsLink(t, pid, "mnt"), nsLink(t, "self", "mnt"); got != want {
		t.Fatalf("container mount namespace %s, want the host's %s", got, want)
	}
	if ms := mountsUnder(t, rootfs); !contains(ms, filepath.Join(mustReal(t, rootfs), "proc")) {
		t.Fatalf("mounts under the rootfs %v, want its /proc among them", ms)
	}
	e.mustOK("start", id)
	if out := e.mustOK("exec", id, "cat", "/marker"); out != "inside" {
		t.Fatalf("exec sees /marker = %q, want the container's \"inside\"", out)
	}
	e.mustOK("delete", "--force", id)
	if ms := mountsUnder(t, rootfs); len(ms) != 0 {
		t.Fatalf("delete left mounts on the host: %v", ms)
	}

	for field, mutate := range map[string]func(*specs.Spec){
		"linux.maskedPaths": func(s *specs.Spec) {},
		"root.readonly":     func(s *specs.Spec) { s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil },
	} {
		b := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Linux.Namespaces = without(s.Linux.Namespaces, specs.MountNamespace)
			mutate(s)
		})
		if r := e.bw("create", "-b", b, e.id()); r.code == 0 || !strings.Contains(r.stderr, field) {
			t.Fatalf("create without a mount namespace but with %s: %v", field, r)
		}
		if ms := mountsUnder(t, filepath.Join(b, "rootfs")); len(ms) != 0 {
			t.Fatalf("refused create left mounts: %v", ms)
		}
	}
}

func mustReal(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A payload that exits at once must not turn the poststart hook's state
// into "stopped" without a pid: start did start it (runtime-tools
// hooks_stdin).
func TestPoststartHookSeesRunningEvenForAnInstantPayload(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "poststart")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{hookScript("cat > " + out)}}
	})
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	pid := int(e.state(id)["pid"].(float64))
	e.mustOK("start", id)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var st specs.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if st.Status != specs.StateRunning || st.Pid != pid {
		t.Fatalf("poststart state: status %q pid %d, want running and %d", st.Status, st.Pid, pid)
	}
}
