package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func TestRunReturnsTheContainersExitStatus(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255},
	} {
		r := e.runIn(nil, "sh", "-c", tc.script)
		if r.code != tc.code {
			t.Errorf("%q: got %v, want exit %d", tc.script, r, tc.code)
		}
	}
}

func TestRunReportsDeathBySignalAs128PlusN(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	done := make(chan result, 1)
	go func() { done <- e.bw("run", "-b", bundle, id) }()
	for i := 0; i < 100; i++ {
		if r := e.bw("state", id); r.code == 0 && strings.Contains(r.stdout, `"running"`) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.mustOK("kill", id, "KILL")
	if r := <-done; r.code != 137 {
		t.Fatalf("run of a SIGKILLed container: %v, want exit 137", r)
	}
}

func TestRunPassesStdioThrough(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "read x; echo got:$x; echo err >&2"} })
	r := e.bwIn([]byte("hello\n"), "run", "-b", bundle, e.id())
	if r.code != 0 || strings.TrimSpace(r.stdout) != "got:hello" || !strings.Contains(r.stderr, "err") {
		t.Fatalf("stdio: %v", r)
	}
}

func TestLifecycleCreatedRunningStoppedDeleted(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustOK("create", "-b", bundle, "--pid-file", pidFile, id)
	st := e.state(id)
	if st["status"] != "created" {
		t.Fatalf("after create: %v", st)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil || strconv.Itoa(int(st["pid"].(float64))) != string(b) {
		t.Fatalf("pid file %q (%v) does not match state pid %v", b, err, st["pid"])
	}
	if st["bundle"] != bundle || st["ociVersion"] == "" || st["id"] != id {
		t.Fatalf("state fields: %v", st)
	}
	// The payload must not have started: its comm is still our init.
	comm, _ := os.ReadFile("/proc/" + string(b) + "/comm")
	if strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatalf("payload ran before start")
	}
	if r := e.bw("start", id); r.code != 0 {
		t.Fatalf("start: %v", r)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("after start: %v", st)
	}
	if r := e.bw("start", id); r.code == 0 {
		t.Fatalf("second start must fail: %v", r)
	}
	e.mustOK("kill", id, "KILL")
	waitStatus(t, e, id, "stopped")
	if _, ok := e.state(id)["pid"]; ok && e.state(id)["pid"].(float64) != 0 {
		t.Errorf("stopped container still reports a pid: %v", e.state(id))
	}
	e.mustOK("delete", id)
	if r := e.bw("state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("state after delete: %v", r)
	}
}

func waitStatus(t *testing.T, e *env, id, want string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if e.state(id)["status"] == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("container %s never became %s: %v", id, want, e.state(id))
}

func TestDeleteRefusesALiveContainerWithoutForce(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	for _, start := range []bool{false, true} {
		id := e.id()
		e.mustOK("create", "-b", bundle, id)
		if start {
			e.mustOK("start", id)
		}
		r := e.bw("delete", id)
		if r.code == 0 || !strings.Contains(r.stderr, "not stopped") {
			t.Fatalf("delete without --force (started=%v): %v", start, r)
		}
		st := e.state(id)
		if st["status"] == "stopped" {
			t.Fatalf("failed delete changed the container: %v", st)
		}
		e.mustOK("delete", "--force", id)
		assertNoLeftovers(t, id)
	}
}

func TestKillAcceptsSignalNamesAndNumbers(t *testing.T) {
	e := newEnv(t)
	// The shell traps each signal and writes its name, so we can see what
	// arrived; pid 1 ignores unhandled signals, so traps are needed anyway.
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", "trap 'echo USR1 >> /sig' USR1; trap 'echo HUP >> /sig' HUP; trap 'echo TERM >> /sig; exit 0' TERM; while :; do sleep 0.05; done"}
	})
	id := e.id()
	e.mustOK("run", "-d", "-b", bundle, id)
	time.Sleep(200 * time.Millisecond)
	for _, sig := range []string{"USR1", "SIGHUP", "10"} {
		e.mustOK("kill", id, sig)
		time.Sleep(150 * time.Millisecond)
	}
	e.mustOK("kill", id) // default SIGTERM
	waitStatus(t, e, id, "stopped")
	got, _ := os.ReadFile(filepath.Join(bundle, "rootfs", "sig"))
	if strings.Fields(string(got))[0] != "USR1" || !strings.Contains(string(got), "HUP") || !strings.HasSuffix(strings.TrimSpace(string(got)), "TERM") || strings.Count(string(got), "USR1") != 2 {
		t.Fatalf("signals seen by the container: %q", got)
	}
	if r := e.bw("kill", id, "NOSUCHSIG"); r.code == 0 {
		t.Fatalf("unknown signal accepted: %v", r)
	}
}

func TestKillAllSignalsEveryProcess(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "sleep 100 & sleep 100 & wait"} })
	id := e.id()
	e.mustOK("run", "-d", "-b", bundle, id)
	time.Sleep(200 * time.Millisecond)
	out := e.mustOK("ps", "--format", "json", id)
	if strings.Count(out, ",") < 2 {
		t.Fatalf("expected 3 processes, ps says %s", out)
	}
	e.mustOK("kill", "--all", id, "KILL")
	waitStatus(t, e, id, "stopped")
	out = e.mustOK("ps", "--format", "json", id)
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("processes left after kill --all: %s", out)
	}
}

func TestListShowsContainersInTableAndJSON(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	a, b := e.id(), e.id()
	e.mustOK("create", "-b", bundle, a)
	e.mustOK("run", "-d", "-b", bundle, b)
	tbl := e.mustOK("list")
	if !strings.HasPrefix(tbl, "ID") || !strings.Contains(tbl, a) || !strings.Contains(tbl, b) || !strings.Contains(tbl, "created") || !strings.Contains(tbl, "running") {
		t.Fatalf("list table:\n%s", tbl)
	}
	js := e.mustOK("list", "--format", "json")
	var listed []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(js), &listed); err != nil {
		t.Fatalf("list json: %v\n%s", err, js)
	}
	status := map[string]string{}
	for _, c := range listed {
		status[c.ID] = c.Status
	}
	if status[a] != "created" || status[b] != "running" {
		t.Fatalf("list json:\n%s", js)
	}
	q := e.mustOK("list", "-q")
	if len(strings.Fields(q)) != 2 {
		t.Fatalf("list -q: %q", q)
	}
}

func TestPauseAndResumeFreezeTheContainer(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.02; done"}
	})
	id := e.id()
	e.mustOK("run", "-d", "-b", bundle, id)
	time.Sleep(200 * time.Millisecond)
	e.mustOK("pause", id)
	if st := e.state(id); st["status"] != "paused" {
		t.Fatalf("after pause: %v", st)
	}
	c1, _ := os.ReadFile(filepath.Join(bundle, "rootfs", "count"))
	time.Sleep(300 * time.Millisecond)
	c2, _ := os.ReadFile(filepath.Join(bundle, "rootfs", "count"))
	if string(c1) != string(c2) {
		t.Fatalf("paused container kept running: %q -> %q", c1, c2)
	}
	e.mustOK("resume", id)
	time.Sleep(300 * time.Millisecond)
	c3, _ := os.ReadFile(filepath.Join(bundle, "rootfs", "count"))
	if string(c3) == string(c2) {
		t.Fatalf("resumed container does not run: %q", c3)
	}
	if st := e.state(id); st["status"] != "running" {
		t.Fatalf("after resume: %v", st)
	}
	// delete --force of a paused container works too.
	e.mustOK("pause", id)
	e.mustOK("delete", "--force", id)
	assertNoLeftovers(t, id)
}

func TestSpecWritesARuncShapedConfig(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.mustOK("spec", "--bundle", dir)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || !strings.Contains(string(b), `"ociVersion"`) || !strings.Contains(string(b), "CAP_NET_BIND_SERVICE") {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	if r := e.bw("spec", "--bundle", dir); r.code == 0 {
		t.Fatalf("spec must not overwrite an existing config.json")
	}
	out := e.mustOK("features")
	for _, want := range []string{`"ociVersionMin"`, `"namespaces"`, `"seccomp"`, `"CAP_SYS_ADMIN"`} {
		if !strings.Contains(out, want) {
			t.Errorf("features lacks %s", want)
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

// With the host's PID namespace shared, SIGKILL to the init alone would
// leave its children running: kill KILL kills the whole cgroup, as runc.
func TestKillKILLWithASharedPIDNamespaceKillsEveryProcess(t *testing.T) {
	e := newEnv(t)
	id, pid := e.detached(func(s *specs.Spec) {
		s.Linux.Namespaces = without(s.Linux.Namespaces, specs.PIDNamespace)
		s.Process.Args = []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait"}
	})
	var children []string
	for deadline := time.Now().Add(5 * time.Second); len(children) < 2; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
		children = strings.Fields(string(b))
		if time.Now().After(deadline) {
			t.Fatalf("the init (pid %s) did not start its two sleeps: %q", pid, children)
		}
	}
	e.mustOK("kill", id, "KILL")
	for _, c := range children {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile("/proc/" + c + "/stat")
			if err != nil || strings.Contains(string(b), ") Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %s KILL left the init's child %s running: %s", id, c, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
