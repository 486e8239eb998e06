package engines

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ctrEngine is a private containerd driven with ctr: the runc shim
// (io.containerd.runc.v2) runs bulwark through --runc-binary, with the
// runtime's state under --runc-root in the test's directory.
type ctrEngine struct {
	sock, runcRoot, image string
}

var (
	ctrOnce sync.Once
	ctrEng  *ctrEngine
	ctrSkip string
)

const ctrImage = "docker.io/library/bwtest:1"

// containerdConfig gives the daemon its own root, state, sockets and no CRI
// plugin (which would want CNI and a registry).
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
`

func startContainerd(t *testing.T) *ctrEngine {
	t.Helper()
	requireEngine(t, "containerd", "ctr", "containerd-shim-runc-v2")
	ctrOnce.Do(func() {
		dir := filepath.Join(workDir, "ctrd")
		os.MkdirAll(dir, 0o700)
		e := &ctrEngine{sock: filepath.Join(dir, "c.sock"), runcRoot: filepath.Join(dir, "runc"), image: ctrImage}
		cfg := filepath.Join(dir, "config.toml")
		os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"),
			e.sock, e.sock+".ttrpc", filepath.Join(dir, "debug.sock"))), 0o644)
		log, _ := os.Create(filepath.Join(dir, "containerd.log"))
		cmd := exec.Command("containerd", "--config", cfg)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			ctrSkip = err.Error()
			return
		}
		go cmd.Wait()
		atExit(func() {
			// Tasks first: a shim outlives its daemon by design.
			for _, id := range strings.Fields(runOut("ctr", "--address", e.sock, "-n", "bwtest", "task", "ls", "-q")) {
				exec.Command("ctr", "--address", e.sock, "-n", "bwtest", "task", "kill", "-s", "SIGKILL", id).Run()
				time.Sleep(100 * time.Millisecond)
				exec.Command("ctr", "--address", e.sock, "-n", "bwtest", "task", "delete", "-f", id).Run()
			}
			for _, id := range strings.Fields(runOut("ctr", "--address", e.sock, "-n", "bwtest", "c", "ls", "-q")) {
				exec.Command("ctr", "--address", e.sock, "-n", "bwtest", "c", "rm", id).Run()
			}
			stopProcess(cmd.Process.Pid, 20*time.Second)
			log.Close()
			killShimsUnder(dir)
			removeAll(dir)
		})
		if !waitFor(30*time.Second, func() bool { return exec.Command("ctr", "--address", e.sock, "version").Run() == nil }) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			ctrSkip = "containerd did not answer within 30s:\n" + lastLines(string(b), 20)
			return
		}
		archive := filepath.Join(dir, "image.tar")
		if err := writeOCIArchive(archive, rootfsTarball(t), ctrImage); err != nil {
			ctrSkip = err.Error()
			return
		}
		if out, err := exec.Command("ctr", "--address", e.sock, "-n", "bwtest", "image", "import", archive).CombinedOutput(); err != nil {
			ctrSkip = fmt.Sprintf("ctr image import: %v: %s", err, out)
			return
		}
		ctrEng = e
	})
	if ctrEng == nil {
		t.Fatalf("containerd is not usable: %s", ctrSkip)
	}
	return ctrEng
}

func runOut(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return string(b)
}

func (e *ctrEngine) args(args ...string) []string {
	return append([]string{"--address", e.sock, "-n", "bwtest"}, args...)
}

func (e *ctrEngine) do(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, nil, "ctr", e.args(args...)...)
}

func (e *ctrEngine) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := e.do(t, args...)
	if r.code != 0 {
		t.Fatalf("ctr %v: %v", args, r)
	}
	return r.stdout
}

// runFlags select the runc shim with bulwark as its binary.
func (e *ctrEngine) runFlags() []string {
	return []string{"--runtime", "io.containerd.runc.v2", "--runc-binary", bulwarkBin, "--runc-root", e.runcRoot}
}

func (e *ctrEngine) id(t *testing.T) string {
	return fmt.Sprintf("bwc-%d-%d", os.Getpid(), nameSeq.Add(1))
}

// run is `ctr run --rm FLAGS IMAGE ID ARGS`.
func (e *ctrEngine) run(t *testing.T, flags []string, args ...string) result {
	t.Helper()
	a := append(append([]string{"run", "--rm"}, e.runFlags()...), flags...)
	a = append(append(a, e.image, e.id(t)), args...)
	return e.do(t, a...)
}

// start runs a detached sleeping task, removed when the test ends.
func (e *ctrEngine) start(t *testing.T, flags ...string) string {
	t.Helper()
	id := e.id(t)
	a := append(append([]string{"run", "-d"}, e.runFlags()...), flags...)
	e.ok(t, append(a, e.image, id, "sleep", "100000")...)
	t.Cleanup(func() {
		e.do(t, "task", "kill", "-s", "SIGKILL", id)
		waitFor(10*time.Second, func() bool {
			return !strings.Contains(e.do(t, "task", "ls").stdout, id) || e.do(t, "task", "delete", id).code == 0
		})
		e.do(t, "task", "delete", "-f", id)
		e.do(t, "container", "rm", id)
	})
	return id
}

func TestCtrRunPassesExitCode(t *testing.T) {
	e := startContainerd(t)
	r := e.run(t, nil, "sh", "-c", "echo hello from bulwark; exit 42")
	if r.code != 42 || !strings.Contains(r.stdout, "hello from bulwark") {
		t.Fatalf("want output and exit 42: %v", r)
	}
}

func TestCtrTTYSessionInRunAndExec(t *testing.T) {
	requireEngine(t, "script")
	e := startContainerd(t)
	check := "tty; [ -t 0 ] && [ -t 1 ] && echo stdin-and-stdout-are-terminals"
	a := append(append([]string{"ctr"}, e.args("run", "--rm", "-t")...), e.runFlags()...)
	a = append(a, e.image, e.id(t), "sh", "-c", check)
	r := runCmd(t, nil, "script", "-qefc", shellQuote(a), "/dev/null")
	if r.code != 0 || !strings.Contains(r.stdout, "/dev/pts/") || !strings.Contains(r.stdout, "stdin-and-stdout-are-terminals") {
		t.Fatalf("ctr run -t: want a pts in the container: %v", r)
	}
	id := e.start(t)
	a = append([]string{"ctr"}, e.args("task", "exec", "-t", "--exec-id", "tty1", id, "sh", "-c", check)...)
	r = runCmd(t, nil, "script", "-qefc", shellQuote(a), "/dev/null")
	if r.code != 0 || !strings.Contains(r.stdout, "/dev/pts/") || !strings.Contains(r.stdout, "stdin-and-stdout-are-terminals") {
		t.Fatalf("ctr task exec -t: want a pts in the container: %v", r)
	}
}

func TestCtrExecPsPauseMetricsKill(t *testing.T) {
	e := startContainerd(t)
	id := e.start(t, "--memory-limit", "67108864")
	// exec: sees the init as pid 1, passes the exit code back.
	out := e.ok(t, "task", "exec", "--exec-id", "x1", id, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
	if !strings.HasPrefix(out, "sleep 100000") {
		t.Fatalf("exec does not see the init as pid 1: %q", out)
	}
	if r := e.do(t, "task", "exec", "--exec-id", "x2", id, "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("want exec exit 3: %v", r)
	}
	// ps: bulwark ps --format json lists the task's pids.
	if ps := e.ok(t, "task", "ps", id); len(strings.Fields(ps)) < 2 {
		t.Fatalf("task ps lists no process: %q", ps)
	}
	// pause / resume.
	e.ok(t, "task", "pause", id)
	if ls := e.ok(t, "task", "ls"); !strings.Contains(lineWith(ls, id), "PAUSED") {
		t.Fatalf("after pause: %q", ls)
	}
	e.ok(t, "task", "resume", id)
	if ls := e.ok(t, "task", "ls"); !strings.Contains(lineWith(ls, id), "RUNNING") {
		t.Fatalf("after resume: %q", ls)
	}
	// ctr 1.6 has no `task update` (containerd's API does; docker and
	// podman exercise bulwark update through it in
	// TestUpdateMemoryReachesCgroupAndState).
	// metrics: non-zero memory use read from the task's cgroup.
	m := e.ok(t, "task", "metrics", id)
	if !strings.Contains(m, "memory.usage_in_bytes") && !strings.Contains(m, "memory.current") && !strings.Contains(m, "memory.usage") {
		t.Fatalf("task metrics shows no memory usage:\n%s", m)
	}
	// kill: the task stops with SIGKILL's status.
	e.ok(t, "task", "kill", "-s", "SIGKILL", id)
	if !waitFor(10*time.Second, func() bool { return strings.Contains(lineWith(e.ok(t, "task", "ls"), id), "STOPPED") }) {
		t.Fatalf("task not STOPPED after SIGKILL: %s", e.ok(t, "task", "ls"))
	}
	e.ok(t, "task", "delete", id)
	if s := findStateFiles(e.runcRoot, id); len(s) > 0 {
		t.Fatalf("bulwark state left after task delete: %v", s)
	}
	if l := leftoverCgroups(id); len(l) > 0 {
		t.Fatalf("cgroups left after task delete: %v", l)
	}
}

func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func TestCtrSecurityFlags(t *testing.T) {
	e := startContainerd(t)
	t.Run("read-only", func(t *testing.T) {
		r := e.run(t, []string{"--read-only"}, "sh", "-c", "touch /newfile && echo WROTE")
		if strings.Contains(r.stdout, "WROTE") || !strings.Contains(r.stdout+r.stderr, "Read-only file system") {
			t.Fatalf("--read-only: want EROFS: %v", r)
		}
	})
	t.Run("cap-drop-cap-add", func(t *testing.T) {
		// ctr 1.6 knows no "ALL": drop its default set by name but one.
		var flags []string
		for _, c := range []string{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
			"SETFCAP", "SETPCAP", "SYS_CHROOT", "KILL", "AUDIT_WRITE"} {
			flags = append(flags, "--cap-drop", "CAP_"+c)
		}
		flags = append(flags, "--cap-add", "CAP_SYS_NICE")
		r := e.run(t, flags, "grep", "^CapEff", "/proc/self/status")
		// NET_BIND_SERVICE (bit 10) kept, SYS_NICE (bit 23) added.
		if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 2 || f[1] != "0000000000800400" {
			t.Fatalf("want CapEff 0x800400 (NET_BIND_SERVICE, SYS_NICE) only: %v", r)
		}
	})
	t.Run("no-new-privileges", func(t *testing.T) {
		// ctr sets no_new_privs unless --allow-new-privs.
		r := e.run(t, nil, "grep", "NoNewPrivs", "/proc/self/status")
		if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 2 || f[1] != "1" {
			t.Fatalf("want NoNewPrivs 1: %v", r)
		}
		r = e.run(t, []string{"--allow-new-privs"}, "grep", "NoNewPrivs", "/proc/self/status")
		if f := strings.Fields(r.stdout); r.code != 0 || len(f) != 2 || f[1] != "0" {
			t.Fatalf("--allow-new-privs: want NoNewPrivs 0: %v", r)
		}
	})
	t.Run("seccomp-profile", func(t *testing.T) {
		prof := filepath.Join(t.TempDir(), "deny-mkdir.json")
		os.WriteFile(prof, []byte(denyMkdirProfile), 0o644)
		r := e.run(t, []string{"--seccomp", "--seccomp-profile", prof}, "sh", "-c", "mkdir /tmp/d && echo MADE; touch /tmp/f && echo TOUCHED")
		if strings.Contains(r.stdout, "MADE") || !strings.Contains(r.stdout, "TOUCHED") || !strings.Contains(r.stdout+r.stderr, "Operation not permitted") {
			t.Fatalf("profile should deny mkdir only: %v", r)
		}
	})
	t.Run("device", func(t *testing.T) {
		r := e.run(t, []string{"--device", "/dev/null"}, "sh", "-c", "stat -c '%t:%T %F' /dev/null && echo data > /dev/null && echo WRITTEN")
		if r.code != 0 || !strings.Contains(r.stdout, "1:3 character special file") || !strings.Contains(r.stdout, "WRITTEN") {
			t.Fatalf("--device /dev/null: %v", r)
		}
	})
	t.Run("memory-limit-enforced", func(t *testing.T) {
		id := e.start(t, "--memory-limit", "33554432")
		if got := hostMemoryLimit(t, e, id); got != "33554432" {
			t.Fatalf("--memory-limit 32 MiB: the task's cgroup says %q", got)
		}
		// Touching more than the limit gets the process OOM-killed.
		r := e.do(t, "task", "exec", "--exec-id", "bomb", id, "/usr/local/bin/membomb", "200")
		if r.code != 137 {
			t.Fatalf("membomb 200 MiB under a 32 MiB limit: want OOM kill (137): %v", r)
		}
	})
}

// hostMemoryLimit reads the memory limit of a task's cgroup from the host.
func hostMemoryLimit(t *testing.T, e *ctrEngine, id string) string {
	t.Helper()
	f := strings.Fields(lineWith(e.ok(t, "task", "ls"), id))
	if len(f) < 2 {
		t.Fatalf("task %s not listed", id)
	}
	b, err := os.ReadFile("/proc/" + f[1] + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
		if len(parts) == 3 && parts[0] == "0" && parts[1] == "" {
			if v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", parts[2], "memory.max")); err == nil {
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("no memory cgroup for task %s: %s", id, b)
	return ""
}
