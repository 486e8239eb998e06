package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// recordScript saves the state from stdin and $BWT_HOOK as the next entry
// of a numbered log in the directory $1, so order and content can be read
// back. It is used both on the host and (with /bin/sh of busybox) inside.
const recordScript = `d=$1; n=$(ls "$d" | grep -c json); cat > "$d/$n-$BWT_HOOK.json"`

type hookRecord struct {
	kind  string
	state specs.State
}

func readHookLog(t *testing.T, dir string) []hookRecord {
	t.Helper()
	ents, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Slice(ents, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.SplitN(filepath.Base(ents[i]), "-", 2)[0])
		b, _ := strconv.Atoi(strings.SplitN(filepath.Base(ents[j]), "-", 2)[0])
		return a < b
	})
	var out []hookRecord
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r hookRecord
		r.kind = strings.TrimSuffix(strings.SplitN(filepath.Base(p), "-", 2)[1], ".json")
		if r.kind != "payload" {
			if err := json.Unmarshal(b, &r.state); err != nil {
				t.Fatalf("%s: state on stdin is not JSON: %v: %q", p, err, b)
			}
		}
		out = append(out, r)
	}
	return out
}

func kinds(rs []hookRecord) string {
	var k []string
	for _, r := range rs {
		k = append(k, r.kind)
	}
	return strings.Join(k, ",")
}

func TestConfigHooksRunInOrderWithTheStateOfTheirPhase(t *testing.T) {
	e := newEnv(t)
	logDir := t.TempDir()
	host := func(kind string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", recordScript, "sh", logDir}, Env: []string{"BWT_HOOK=" + kind}, Timeout: ptr(10)}
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		// The payload logs itself the same way, through a bind of logDir.
		s.Process.Args = []string{"sh", "-c", "BWT_HOOK=payload; " + recordScript + " </dev/null; exec sleep 100", "sh", "/mnt"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: logDir, Options: []string{"rbind", "rw"}})
		s.Hooks = &specs.Hooks{
			//lint:ignore SA1019 prestart is deprecated but engines and the conformance suite still use it
			Prestart:        []specs.Hook{host("prestart")}, //nolint:staticcheck // deprecated but still used by engines
			CreateRuntime:   []specs.Hook{host("createRuntime")},
			CreateContainer: []specs.Hook{host("createContainer")},
			// startContainer runs after pivot_root: its path is in the rootfs.
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", recordScript, "sh", "/mnt"}, Env: []string{"BWT_HOOK=startContainer"}}},
			Poststart:      []specs.Hook{host("poststart")},
			Poststop:       []specs.Hook{host("poststop")},
		}
	})
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustOK("create", "-b", bundle, "--pid-file", pidFile, id)
	pb, _ := os.ReadFile(pidFile)
	initPid, _ := strconv.Atoi(string(pb))
	if got := kinds(readHookLog(t, logDir)); got != "prestart,createRuntime,createContainer" {
		t.Fatalf("after create: hooks %q", got)
	}
	e.mustOK("start", id)
	// The payload logs itself concurrently with poststart: wait for it.
	for i := 0; i < 250 && len(readHookLog(t, logDir)) < 6; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if got := kinds(readHookLog(t, logDir)); got != "prestart,createRuntime,createContainer,startContainer,payload,poststart" &&
		got != "prestart,createRuntime,createContainer,startContainer,poststart,payload" {
		t.Fatalf("after start: hooks %q", got)
	}
	e.mustOK("kill", id, "KILL")
	waitStatus(t, e, id, "stopped")
	e.mustOK("delete", id)
	rs := readHookLog(t, logDir)
	if rs[len(rs)-1].kind != "poststop" || len(rs) != 7 {
		t.Fatalf("after delete: hooks %q", kinds(rs))
	}
	for _, r := range rs {
		if r.kind == "payload" {
			continue
		}
		st := r.state
		if st.ID != id || st.Bundle != bundle || st.Version == "" {
			t.Errorf("%s: state %+v", r.kind, st)
		}
		wantStatus, wantPid := map[string]specs.ContainerState{
			// prestart, specified before createRuntime existed, reports
			// "created" as crun and the runtime-tools suite expect.
			"prestart": specs.StateCreated, "createRuntime": specs.StateCreating, "createContainer": specs.StateCreating,
			"startContainer": specs.StateCreated, "poststart": specs.StateRunning, "poststop": specs.StateStopped,
		}[r.kind], initPid
		switch r.kind {
		case "createContainer", "startContainer":
			// These run inside the container's pid namespace, where the
			// init is pid 1.
			wantPid = 1
		case "poststop":
			wantPid = st.Pid // no process is left to name
		}
		if st.Status != wantStatus || st.Pid != wantPid {
			t.Errorf("%s: status %q pid %d, want %q pid %d", r.kind, st.Status, st.Pid, wantStatus, wantPid)
		}
	}
}

func TestConfigFailingCreateRuntimeHookFailsCreateAndLeavesNothing(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		hook specs.Hook
		want string
	}{
		{"exit status", specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-says-no >&2; exit 3"}}, "createRuntime"},
		{"timeout", specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "exec sleep 60"}, Timeout: ptr(1)}, "createRuntime"},
		{"env reaches the hook", specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `[ "$BWT_X" = "y z" ] || exit 0; echo env-seen >&2; exit 1`}, Env: []string{"BWT_X=y z"}}, "env-seen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sleep", "100"}
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{tc.hook}}
			})
			id := e.id()
			r := e.bw("create", "-b", bundle, id)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("create with a failing createRuntime hook: %v", r)
			}
			if r := e.bw("state", id); r.code == 0 {
				t.Fatalf("container exists after a failed create: %v", r)
			}
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Fatalf("state left in --root: %v", ents)
			}
			assertNoLeftovers(t, id)
		})
	}
}

// TestFailingHookIsNamedInRuncsWords: a failing hook of any kind that
// stops the container fails `run` with runc's "error running KIND hook #N:"
// (scripts and runc's own suite match it), then the hook's path.
func TestFailingHookIsNamedInRuncsWords(t *testing.T) {
	e := newEnv(t)
	pair := []specs.Hook{{Path: "/bin/true"}, {Path: "/bin/false"}}
	for _, tc := range []struct {
		kind string
		set  func(h *specs.Hooks)
	}{
		//lint:ignore SA1019 prestart is deprecated but engines still use it
		{"prestart", func(h *specs.Hooks) { h.Prestart = pair }},
		{"createRuntime", func(h *specs.Hooks) { h.CreateRuntime = pair }},
		{"createContainer", func(h *specs.Hooks) { h.CreateContainer = pair }},
		{"startContainer", func(h *specs.Hooks) { h.StartContainer = pair }},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"echo", "payload-ran"}
				s.Hooks = &specs.Hooks{}
				tc.set(s.Hooks)
			})
			id := e.id()
			r := e.bw("run", "-b", bundle, id)
			want := "error running " + tc.kind + " hook #1: /bin/false"
			if r.code == 0 || !strings.Contains(r.stderr, want) || strings.Contains(r.stdout, "payload-ran") {
				t.Fatalf("run with a failing %s hook: want a failure naming %q and no payload, got %v", tc.kind, want, r)
			}
			e.bw("delete", "-f", id)
		})
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
	if r := e.bw("start", id); r.code != 0 || !strings.Contains(r.stderr, "error running poststart hook #0: /bin/false") {
		t.Fatalf("start with a failing poststart hook: %v", r)
	}
	waitStatus(t, e, id, "stopped")
	if r := e.bw("delete", id); r.code != 0 || !strings.Contains(r.stderr, "error running poststop hook #0: /bin/false") {
		t.Fatalf("delete with a failing poststop hook: %v", r)
	}
	for _, f := range []string{post, stop} {
		if b, err := os.ReadFile(f); err != nil || strings.TrimSpace(string(b)) != "ran" {
			t.Fatalf("%s: the hook after the failing one did not run (%q, %v)", filepath.Base(f), b, err)
		}
	}
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

// poststart hooks run once the payload has been executed, not merely once
// the init was released: a startContainer hook holds the init for a second
// between its release and its execve, and the poststart hook must still
// find the payload's own command line at the state's pid. The
// runtime-tools poststart test checks the same order by which of the
// payload and the hook appends to a file first, which races (the payload
// may not have written yet when the hook does); conformance/run.sh.
func TestPoststartHookRunsAfterThePayloadIsExecuted(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "cmdline")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "31"}
		s.Hooks = &specs.Hooks{
			StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 1"}}},
			Poststart:      []specs.Hook{hookScript(`pid=$(sed 's/.*"pid": *\([0-9]*\).*/\1/'); tr '\0' ' ' < /proc/$pid/cmdline > ` + out)},
		}
	})
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	e.mustOK("start", id)
	defer e.bw("kill", id, "KILL")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "sleep 31" {
		t.Fatalf("the poststart hook saw %q at the container's pid, want the payload's \"sleep 31\": it ran before the payload's execve", got)
	}
}

// What fails after create has handed the container over (a startContainer
// hook, the payload's execve) is said on the container's stderr, as runc
// says it, not an exit 1 without a word.
func TestFailuresAfterCreateAreReported(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*specs.Spec)
		want   []string
	}{
		{"startContainer hook fails", func(s *specs.Spec) {
			s.Process.Args = []string{"true"}
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo bwt-hook-said; exit 3"}}}}
		}, []string{"startContainer", "exit status 3", "bwt-hook-said"}},
		{"payload's #! interpreter missing", func(s *specs.Spec) {
			s.Process.Args = []string{"/bad-interp.sh"}
		}, []string{"exec /bad-interp.sh", "no such file or directory"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bundle := testrootfs.Bundle(t, tc.mutate)
			script := filepath.Join(bundle, "rootfs", "bad-interp.sh")
			if err := os.WriteFile(script, []byte("#!/nonexistent/interpreter\necho ran\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			r := e.bw("run", "-b", bundle, e.id())
			if r.code == 0 {
				t.Fatalf("run succeeded: %v", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("stderr lacks %q: %v", w, r)
				}
			}
		})
	}
}

// startContainer hooks run inside the container as its payload will: under
// its seccomp filter (also with noNewPrivileges, where the filter used to go
// on only after them) and, when they set no env, with process.env, as runc
// runs them.
func TestStartContainerHooksRunConfinedWithTheProcessEnv(t *testing.T) {
	e := newEnv(t)
	check := `got=$(/usr/local/bin/syscall keyctl)
[ "$got" = EXDEV ] || { echo "hook's keyctl: $got, want the filter's EXDEV"; exit 1; }
[ "$BWT_ENV" = from-process ] || { echo "hook env: $(env)"; exit 1; }`
	r := e.runIn(func(s *specs.Spec) {
		s.Process.NoNewPrivileges = true
		s.Process.Env = append(s.Process.Env, "BWT_ENV=from-process")
		exdev := uint(unix.EXDEV)
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"keyctl"}, Action: specs.ActErrno, ErrnoRet: &exdev}}}
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", check}}}}
	}, "echo", "payload ran")
	if r.code != 0 || !strings.Contains(r.stdout, "payload ran") {
		t.Fatalf("%v", r)
	}
}

// A create that fails once the container exists (here a createRuntime hook)
// still runs the poststop hooks, with the container stopped, as runc runs
// them from its destroy: they undo what the earlier hooks set up.
func TestPoststopHooksRunAfterAFailedCreate(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "poststop.json")
	id := e.id()
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hookScript("exit 3")},
			Poststop:      []specs.Hook{hookScript("cat > " + out)},
		}
	})
	if r := e.bw("run", "-b", bundle, id); r.code == 0 {
		t.Fatalf("run with a failing createRuntime hook: %v", r)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("poststop hook did not run after the failed create: %v", err)
	}
	var st specs.State
	if err := json.Unmarshal(b, &st); err != nil || st.ID != id || st.Status != specs.StateStopped || st.Pid != 0 {
		t.Fatalf("poststop hook's state %s (%v), want %s stopped without a pid", b, err, id)
	}
}
