package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// consoleListener plays the engine's side of --console-socket: it receives
// the pty master over SCM_RIGHTS, types input into it and collects what the
// container writes until the pty closes.
func consoleListener(t *testing.T, input string) (string, <-chan string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1)
	go func() {
		defer l.Close()
		l.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			out <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			out <- "recvmsg: " + err.Error()
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		var fds []int
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
		if len(fds) != 1 {
			out <- "no pty master in the message"
			return
		}
		master := os.NewFile(uintptr(fds[0]), "pty-master")
		defer master.Close()
		master.WriteString(input)
		var b bytes.Buffer
		_, err = io.Copy(&b, master)
		// EIO is how a pty master reads once every slave fd is closed.
		if err != nil && !errors.Is(err, unix.EIO) {
			b.WriteString("\nread: " + err.Error())
		}
		out <- b.String()
	}()
	return sock, out
}

func TestConfigTerminalIsSentToTheConsoleSocket(t *testing.T) {
	e := newEnv(t)
	sock, out := consoleListener(t, "stty size; tty; echo h''i; exit 3\n")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 40, Width: 123}
		s.Process.Args = []string{"sh"}
	})
	r := e.bw("run", "--console-socket", sock, "-b", bundle, e.id())
	got := <-out
	if r.code != 3 {
		t.Fatalf("run with a terminal: %v, want exit 3; console:\n%s", r, got)
	}
	for _, want := range []string{"40 123", "/dev/pts/0", "hi"} {
		if !strings.Contains(got, want) {
			t.Errorf("console output lacks %q:\n%s", want, got)
		}
	}
}

func TestConfigExecWithTerminalUsesTheConsoleSocket(t *testing.T) {
	e := newEnv(t)
	id, _ := e.detached(nil)
	sock, out := consoleListener(t, "tty; echo e''x; exit 4\n")
	r := e.bw("exec", "-t", "--console-socket", sock, id, "sh")
	got := <-out
	if r.code != 4 || !strings.Contains(got, "ex") || !strings.Contains(got, "/dev/pts/") {
		t.Fatalf("exec -t: %v\nconsole:\n%s", r, got)
	}
}

func TestConfigPreserveFdsPassesExtraFds(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "echo through-fd3 >&3; echo through-fd4 >&4"}
	})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	pr2, pw2, _ := os.Pipe()
	defer pr2.Close()
	cmd := exec.Command(bulwarkBin, "--root", e.root, "run", "--preserve-fds", "2", "-b", bundle, e.id())
	cmd.ExtraFiles = []*os.File{pw, pw2}
	outb, err := cmd.CombinedOutput()
	pw.Close()
	pw2.Close()
	if err != nil {
		t.Fatalf("run --preserve-fds 2: %v: %s", err, outb)
	}
	for _, c := range []struct {
		r    *os.File
		want string
	}{{pr, "through-fd3\n"}, {pr2, "through-fd4\n"}} {
		b, _ := io.ReadAll(c.r)
		if string(b) != c.want {
			t.Errorf("pipe got %q, want %q", b, c.want)
		}
	}
}

// TestSocketActivationFdsReachThePayload: fds systemd passes the runtime
// for socket activation (LISTEN_FDS, LISTEN_PID = the runtime's pid) go to
// the container at 3.., ahead of --preserve-fds, and the payload reads
// LISTEN_FDS=N and LISTEN_PID=1, as with runc. An fd past them stays out.
func TestSocketActivationFdsReachThePayload(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `echo via-listen >&3; echo via-preserved >&4; echo env=$LISTEN_FDS:$LISTEN_PID; [ -e /proc/self/fd/5 ] && echo fd5=open || echo fd5=closed`}
	})
	// systemd sets LISTEN_PID to the pid it execs the runtime as.
	wrapper := filepath.Join(t.TempDir(), "activated")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nLISTEN_PID=$$ LISTEN_FDS=1 exec "+bulwarkBin+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	listenR, listenW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer listenR.Close()
	presR, presW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer presR.Close()
	leaked, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer leaked.Close()
	r := e.bwWith(bwOpts{bin: wrapper, extra: []*os.File{listenW, presW, leaked}}, "run", "--preserve-fds", "1", "-b", bundle, e.id())
	listenW.Close()
	presW.Close()
	if r.code != 0 {
		t.Fatalf("run under LISTEN_FDS=1 with --preserve-fds 1: %v", r)
	}
	got := kv(r.stdout)
	if got["env"] != "1:1" || got["fd5"] != "closed" {
		t.Errorf("payload saw LISTEN_FDS:LISTEN_PID %q and fd 5 %q, want 1:1 and closed: %v", got["env"], got["fd5"], r)
	}
	for _, c := range []struct {
		r    *os.File
		want string
	}{{listenR, "via-listen\n"}, {presR, "via-preserved\n"}} {
		b, _ := io.ReadAll(c.r)
		if string(b) != c.want {
			t.Errorf("pipe got %q, want %q", b, c.want)
		}
	}
}

func TestConfigNoPivotRunsContainedInTheRootfs(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "cat /etc/hostname >&2; exec /usr/local/bin/fdleak"}
	})
	r := e.bw("run", "--no-pivot", "-b", bundle, e.id())
	type entry struct {
		FD      int  `json:"fd"`
		Outside bool `json:"outside"`
	}
	var rep struct {
		Cwd entry   `json:"cwd"`
		FDs []entry `json:"fds"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rep) != nil || len(rep.FDs) == 0 {
		t.Fatalf("run --no-pivot: %v", r)
	}
	// Our stdio files are handed in on purpose; anything else leading out
	// of the chroot would be an escape route.
	for _, f := range append(rep.FDs, rep.Cwd) {
		if f.Outside && f.FD > 2 || f.Outside && f.FD < 0 {
			t.Fatalf("with --no-pivot fd %d (-1: cwd) leads outside the rootfs: %s", f.FD, r.stdout)
		}
	}
	if r.stderr != "bulwark\n" {
		t.Fatalf("/etc/hostname under --no-pivot is not the rootfs's: %q", r.stderr)
	}
}

func TestConfigExecHonoursItsFlags(t *testing.T) {
	e := newEnv(t)
	id, _ := e.detached(nil)
	probe := func(args ...string) map[string]any {
		t.Helper()
		r := e.bw(append(append([]string{"exec"}, args...), id, "/usr/local/bin/probe")...)
		var m map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil {
			t.Fatalf("exec %v probe: %v", args, r)
		}
		return m
	}
	m := probe("--env", "BWT_E=1", "--cwd", "/usr", "--user", "1000:1000")
	if !strings.Contains(strings.Join(toStrings(m["env"]), " "), "BWT_E=1") || m["cwd"] != "/usr" || m["uid"] != 1000.0 || m["gid"] != 1000.0 {
		t.Errorf("exec --env --cwd --user: env %v cwd %v uid %v gid %v", m["env"], m["cwd"], m["uid"], m["gid"])
	}
	m = probe("--cap", "CAP_SYS_ADMIN")
	for _, set := range []string{"Eff", "Prm", "Bnd"} {
		if !contains(toStrings(m["caps"].(map[string]any)[set].(map[string]any)["names"]), "CAP_SYS_ADMIN") {
			t.Errorf("exec --cap CAP_SYS_ADMIN: Cap%s = %v", set, m["caps"].(map[string]any)[set])
		}
	}

	proc := specs.Process{Args: []string{"sh", "-c", "echo $BWT_P; exit 7"}, Env: []string{"BWT_P=from-process-file"}, Cwd: "/"}
	b, _ := json.Marshal(proc)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, b, 0o644)
	if r := e.bw("exec", "--process", pf, id); r.code != 7 || strings.TrimSpace(r.stdout) != "from-process-file" {
		t.Errorf("exec --process: %v", r)
	}
	if r := e.bw("exec", id, "sh", "-c", "exit 42"); r.code != 42 {
		t.Errorf("exec exit status: %v", r)
	}
}

// exec --cap adds to bounding, effective and permitted only: a non-root
// user gets no effective capability from it after its execve
// (CVE-2022-29162), as in runc.
func TestExecCapGivesANonRootUserNoEffectiveCapability(t *testing.T) {
	e := newEnv(t)
	id, _ := e.detached(nil)
	r := e.bw("exec", "--user", "1000:1000", "--cap", "CAP_NET_RAW", id, "sh", "-c", "grep -E '^Cap(Inh|Eff|Amb):' /proc/self/status")
	if r.code != 0 {
		t.Fatalf("exec --user 1000 --cap CAP_NET_RAW: %v", r)
	}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		v, err := strconv.ParseUint(f[len(f)-1], 16, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if v&(1<<13) != 0 { // CAP_NET_RAW
			t.Errorf("exec --user 1000 --cap CAP_NET_RAW: %s has CAP_NET_RAW", f[0])
		}
	}
}

func TestConfigExecDetachedWritesItsPidFile(t *testing.T) {
	e := newEnv(t)
	id, initPid := e.detached(nil)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	e.mustOK("exec", "--detach", "--pid-file", pidFile, id, "sleep", "99")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	if string(cmdline) != "sleep\x0099\x00" {
		t.Fatalf("pid file names %s running %q", pid, cmdline)
	}
	for _, kind := range []string{"mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		if nsLink(t, pid, kind) != nsLink(t, initPid, kind) {
			t.Errorf("detached exec is not in the init's %s namespace", kind)
		}
	}
}

func TestConfigExecJoinsTheInitsNamespaces(t *testing.T) {
	for _, user := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "user namespace"}[user], func(t *testing.T) {
			if user {
				testrootfs.RequireUserNS(t)
			}
			e := newEnv(t)
			id, initPid := e.detached(func(s *specs.Spec) {
				if user {
					userNS(s)
				}
			})
			r := e.bw("exec", id, "sh", "-c", nsScript+"; echo uid_map=$(cat /proc/self/uid_map)")
			if r.code != 0 {
				t.Fatalf("exec: %v", r)
			}
			got := kv(r.stdout)
			for _, kind := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup", "user"} {
				if want := nsLink(t, initPid, kind); got[kind] != want {
					t.Errorf("exec'd process is in %s %q, init in %q", kind, got[kind], want)
				}
			}
			initMap, _ := os.ReadFile("/proc/" + initPid + "/uid_map")
			if strings.Join(strings.Fields(got["uid_map"]), " ") != strings.Join(strings.Fields(string(initMap)), " ") {
				t.Errorf("exec uid_map %q, init's %q", got["uid_map"], initMap)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// The container's pty does not turn "\n" into "\r\n" (ONLCR cleared, as
// runc does), in run and in exec -t: engines log a terminal container's
// output as it was written.
func TestTerminalOutputKeepsItsNewlines(t *testing.T) {
	e := newEnv(t)
	check := func(what, got string) {
		t.Helper()
		if !strings.Contains(got, "x1y\nx2y\n") || strings.Contains(got, "x1y\r") {
			t.Fatalf("%s: console output %q, want x1y\\nx2y\\n without \\r", what, got)
		}
	}
	const script = "printf 'x%sy\\n' 1 2; exit 0\n"
	sock, out := consoleListener(t, script)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh"}
	})
	r := e.bw("run", "--console-socket", sock, "-b", bundle, e.id())
	got := <-out
	if r.code != 0 {
		t.Fatalf("run -t: %v\nconsole: %q", r, got)
	}
	check("run", got)
	id, _ := e.detached(nil)
	sock, out = consoleListener(t, script)
	r = e.bw("exec", "-t", "--console-socket", sock, id, "sh")
	got = <-out
	if r.code != 0 {
		t.Fatalf("exec -t: %v\nconsole: %q", r, got)
	}
	check("exec -t", got)
}

// The pty is owned by the user the process runs as (runc chowns it too), so
// a non-root payload can use its own terminal.
func TestTerminalIsOwnedByTheProcessUser(t *testing.T) {
	e := newEnv(t)
	id, _ := e.detached(nil)
	sock, out := consoleListener(t, "echo owner=$(stat -c %u $(tty)); exit 0\n")
	r := e.bw("exec", "-t", "--user", "1000:1000", "--console-socket", sock, id, "sh")
	got := <-out
	if r.code != 0 || !strings.Contains(got, "owner=1000") {
		t.Fatalf("exec -t --user 1000: %v\nconsole: %q", r, got)
	}
}
