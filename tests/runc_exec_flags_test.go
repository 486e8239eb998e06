package tests

import (
	"bytes"
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

// pidfdListener listens where --pidfd-socket will dial and returns the pid
// the received pidfd refers to (from its fdinfo) and the pidfd.
func pidfdListener(t *testing.T) (string, func() (int, int)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pidfd.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return path, func() (int, int) {
		t.Helper()
		l.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			t.Fatalf("no connection on the --pidfd-socket: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatalf("reading the --pidfd-socket: %v", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			t.Fatalf("--pidfd-socket: want one control message, got %d (%v)", len(msgs), err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			t.Fatalf("--pidfd-socket: want one fd, got %v (%v)", fds, err)
		}
		t.Cleanup(func() { unix.Close(fds[0]) })
		info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fds[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "Pid:"); ok {
				pid, _ := strconv.Atoi(strings.TrimSpace(v))
				return pid, fds[0]
			}
		}
		t.Fatalf("the fd received on --pidfd-socket is not a pidfd:\n%s", info)
		return 0, 0
	}
}

// --pidfd-socket (create/run and exec) hands a supervisor a pidfd of the
// container's init or of the exec'd process, with which it can signal that
// very process.
func TestPidfdSocketGetsThePidfdOfTheProcess(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	sock, recv := pidfdListener(t)
	id := e.id()
	e.mustOK("run", "-d", "--pidfd-socket", sock, "-b", bundle, id)
	pid, fd := recv()
	if want := int(e.state(id)["pid"].(float64)); pid != want {
		t.Errorf("run --pidfd-socket: the pidfd refers to %d, the init is %d", pid, want)
	}

	sock2, recv2 := pidfdListener(t)
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	e.mustOK("exec", "-d", "--pidfd-socket", sock2, "--pid-file", pidFile, id, "sleep", "100")
	epid, _ := recv2()
	if b, _ := os.ReadFile(pidFile); strconv.Itoa(epid) != string(bytes.TrimSpace(b)) {
		t.Errorf("exec --pidfd-socket: the pidfd refers to %d, --pid-file says %s", epid, b)
	}

	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		t.Fatalf("pidfd_send_signal: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); e.state(id)["status"] != "stopped"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the init is still %v after SIGKILL through its pidfd", e.state(id)["status"])
		}
	}

	if r := e.bw("create", "--pidfd-socket", filepath.Join(t.TempDir(), "none.sock"), "-b", bundle, e.id()); r.code == 0 || !strings.Contains(r.stderr, "--pidfd-socket") {
		t.Errorf("create with a --pidfd-socket nobody listens on must fail naming the flag: %v", r)
	}
}

// exec into a paused container fails with runc's words and exit 255;
// with --ignore-paused the process waits for resume and then runs.
func TestExecIntoAPausedContainerNeedsIgnorePaused(t *testing.T) {
	e := newEnv(t)
	id, _ := e.detached(nil)
	e.mustOK("pause", id)
	r := e.bw("exec", id, "echo", "ok")
	if r.code != 255 || !strings.Contains(r.stderr, "cannot exec in a paused container") {
		t.Fatalf("exec into a paused container: %v", r)
	}
	var out bytes.Buffer
	cmd := exec.Command(bulwarkBin, "--root", e.root, "exec", "--ignore-paused", id, "echo", "ok")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("exec --ignore-paused finished while the container was paused: %v %q", err, out.String())
	case <-time.After(time.Second):
	}
	e.mustOK("resume", id)
	select {
	case err := <-done:
		if err != nil || strings.TrimSpace(out.String()) != "ok" {
			t.Fatalf("exec --ignore-paused after resume: %v %q", err, out.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("exec --ignore-paused did not finish after resume")
	}
}

// exec --cgroup puts the process in an existing sub-cgroup of the
// container's (runc's [CONTROLLER:]PATH), never outside it.
func TestExecCgroupJoinsASubCgroup(t *testing.T) {
	e := newEnv(t)
	id, pid := e.detached(nil)
	b, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	ctrl, dir := "", ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && f[1] == "memory" {
			ctrl, dir = "memory", filepath.Join("/sys/fs/cgroup/memory", f[2])
		} else if len(f) == 3 && f[0] == "0" && dir == "" {
			dir = filepath.Join("/sys/fs/cgroup", f[2])
		}
	}
	if dir == "" {
		t.Fatalf("no cgroup of the init in %q", b)
	}
	sub := filepath.Join(dir, "bwtsub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sub) })
	arg := "bwtsub"
	if ctrl != "" {
		arg = ctrl + ":bwtsub"
	}
	out := e.mustOK("exec", "--cgroup", arg, id, "cat", "/proc/self/cgroup")
	in := false
	for _, l := range strings.Split(out, "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (f[1] == ctrl || ctrl == "" && f[0] == "0") {
			in = strings.HasSuffix(f[2], "/bwtsub")
		}
	}
	if !in {
		t.Errorf("exec --cgroup %s: the process is not in the sub-cgroup:\n%s", arg, out)
	}
	for _, tc := range []struct{ arg, want string }{
		{"..", "bad sub cgroup path"},
		{"nonexistent", "no such file"},
		{"whaaat:/", "unknown controller"},
	} {
		if r := e.bw("exec", "--cgroup", tc.arg, id, "true"); r.code != 255 || !strings.Contains(strings.ToLower(r.stderr), tc.want) {
			t.Errorf("exec --cgroup %s: want exit 255 and %q: %v", tc.arg, tc.want, r)
		}
	}
}
