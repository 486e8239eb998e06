package vm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
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

// The tests below drive a VM container through the OCI face, as an engine
// does: a bundle annotated run.bulwark.isolation=vm, then create, start,
// state, ps, exec, pause, resume, kill and delete. QEMU is the container's
// init there, in its namespaces and cgroup.

type ociRuntime struct {
	t         *testing.T
	bin, root string
}

func (o ociRuntime) do(stdin string, args ...string) (stdout, stderr string, code int) {
	o.t.Helper()
	cmd := exec.Command(o.bin, append([]string{"--root", o.root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		o.t.Fatal(err)
	}
	o.t.Logf("bulwark %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out.String(), errb.String())
	return out.String(), errb.String(), code
}

func (o ociRuntime) ok(args ...string) string {
	o.t.Helper()
	out, _, code := o.do("", args...)
	if code != 0 {
		o.t.Fatalf("bulwark %v: exit %d", args, code)
	}
	return out
}

func (o ociRuntime) state(id string) specs.State {
	o.t.Helper()
	var s specs.State
	if err := json.Unmarshal([]byte(o.ok("state", id)), &s); err != nil {
		o.t.Fatal(err)
	}
	return s
}

func (o ociRuntime) waitStatus(id string, want specs.ContainerState, wait time.Duration) {
	o.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if s := o.state(id); s.Status == want {
			return
		} else if time.Now().After(deadline) {
			o.t.Fatalf("container %s is %s after %v, want %s", id, s.Status, wait, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// vmBundle is a bundle of the test rootfs annotated for VM isolation.
func vmBundle(t *testing.T, mutate func(*specs.Spec)) string {
	return testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Annotations = map[string]string{"run.bulwark.isolation": "vm"}
		if mutate != nil {
			mutate(s)
		}
	})
}

// createAttached runs create with the init's stdout on a pipe, whose lines
// come on the returned channel.
func (o ociRuntime) createAttached(id, bundle string) <-chan string {
	o.t.Helper()
	return o.createAttachedWith(nil, id, bundle)
}

// createAttachedWith is createAttached with global flags before create
// (--harden).
func (o ociRuntime) createAttachedWith(global []string, id, bundle string) <-chan string {
	o.t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		o.t.Fatal(err)
	}
	// A file, not a buffer: the init inherits create's stderr and keeps
	// it open, so a pipe would hold create's Wait until the payload ends.
	errf, err := os.CreateTemp(o.t.TempDir(), "create-stderr")
	if err != nil {
		o.t.Fatal(err)
	}
	defer errf.Close()
	args := append(append([]string{"--root", o.root}, global...), "create", "--bundle", bundle, id)
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout, cmd.Stderr = pw, errf
	err = cmd.Run()
	pw.Close()
	if err != nil {
		pr.Close()
		b, _ := os.ReadFile(errf.Name())
		o.t.Fatalf("create: %v: %s", err, b)
	}
	o.t.Cleanup(func() { o.do("", "delete", "-f", id) })
	lines := make(chan string, 64)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// createWithTerminal runs create with process.terminal and a console
// socket, as an engine does for -t: the lines the payload writes on its
// terminal come on the returned channel, and the pty master the engine
// would hold (to resize it) is returned; the test must not close it.
func (o ociRuntime) createWithTerminal(id, bundle string) (<-chan string, *os.File) {
	o.t.Helper()
	sock := filepath.Join(o.t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		o.t.Fatal(err)
	}
	masters := receiveMaster(l)
	got := make(chan *os.File, 1)
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		master := <-masters
		got <- master
		if master == nil {
			return
		}
		defer master.Close()
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	o.ok("create", "--console-socket", sock, "--bundle", bundle, id)
	o.t.Cleanup(func() { o.do("", "delete", "-f", id) })
	// create returns once the master is sent; receiveMaster gives up
	// after a minute.
	master := <-got
	if master == nil {
		o.t.Fatal("no pty master on --console-socket after create")
	}
	return lines, master
}

// receiveMaster plays an engine's side of --console-socket on l: the pty
// master it receives (runc's protocol, SCM_RIGHTS) comes on the channel,
// nil if none came within a minute. l is closed after.
func receiveMaster(l *net.UnixListener) <-chan *os.File {
	got := make(chan *os.File, 1)
	go func() {
		var master *os.File
		defer func() { got <- master }()
		defer l.Close()
		_ = l.SetDeadline(time.Now().Add(60 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
				master = os.NewFile(uintptr(fds[0]), "pty-master")
			}
		}
	}()
	return got
}

func waitLine(t *testing.T, lines <-chan string, want string, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the payload's stdout closed before %q", want)
			}
			t.Logf("payload: %s", l)
			if strings.Contains(l, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from the payload after %v", want, wait)
		}
	}
}

func procLine(t *testing.T, pid int, file, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(l, prefix))
		}
	}
	return ""
}

func memoryCgroup(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (f[1] == "memory" || f[0] == "0") {
			return f[2]
		}
	}
	t.Fatalf("no memory cgroup for %d:\n%s", pid, b)
	return ""
}

// qemuOf finds the QEMU process among a container's ps pids.
func qemuOf(t *testing.T, o ociRuntime, id string) int {
	t.Helper()
	var pids []int
	if err := json.Unmarshal([]byte(o.ok("ps", "--format", "json", id)), &pids); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "comm")); strings.HasPrefix(string(b), "qemu-system") {
			return p
		}
	}
	t.Fatalf("ps lists no QEMU among %v", pids)
	return 0
}

// requireGone: after delete, no state, no QEMU, no cgroup, no mount.
func requireGone(t *testing.T, root, id string, pids []int, cgroupDir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory %s left behind (%v)", filepath.Join(root, id), err)
	}
	for _, p := range pids {
		// A zombie is gone but for its parent's wait: the host's init
		// reaps the container's orphaned init.
		if st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "stat")); err == nil {
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] != "Z" {
				t.Errorf("process %d left behind: %s", p, st)
			}
		}
	}
	if cgroupDir != "" {
		if _, err := os.Stat(cgroupDir); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind (%v)", cgroupDir, err)
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, filepath.Join(root, id)) {
			t.Errorf("mount left behind: %s", l)
		}
	}
}

// TestOCIVMContainerLifecycle: one boot proves a VM container's whole OCI
// life. QEMU is the container's init's child in its pid and mount
// namespaces and its memory cgroup, without CAP_SYS_ADMIN, with
// no_new_privs and QEMU's own seccomp filter; state shows the isolation;
// exec runs in the guest with stdin, stdout and status; a process
// allocating more than the memory limit is OOM-killed in the guest while
// the container lives on; pause and resume freeze QEMU's cgroup; kill
// SIGTERM reaches the payload's trap; delete leaves nothing.
func TestOCIVMContainerLifecycle(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	limit := int64(448 << 20)
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `trap "echo got-term; exit 42" TERM; echo started; while :; do sleep 1; done`}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	})
	const id = "vm-lifecycle"
	lines := o.createAttached(id, bundle)
	if s := o.state(id); s.Status != specs.StateCreated || s.Annotations["run.bulwark.isolation"] != "vm" {
		t.Fatalf("after create: %+v, want created with the isolation annotation", s)
	}
	o.ok("start", id)
	waitLine(t, lines, "started", 180*time.Second)
	st := o.state(id)
	if st.Status != specs.StateRunning {
		t.Fatalf("after the payload started: %s", st.Status)
	}
	qemu := qemuOf(t, o, id)
	cg := memoryCgroup(t, st.Pid)
	if got := memoryCgroup(t, qemu); got != cg || got == memoryCgroup(t, os.Getpid()) {
		t.Errorf("QEMU's memory cgroup %s, want the container's %s", got, cg)
	}
	for _, ns := range []string{"pid", "mnt", "net"} {
		q, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(qemu), "ns", ns))
		i, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(st.Pid), "ns", ns))
		h, _ := os.Readlink(filepath.Join("/proc/self/ns", ns))
		if q != i || q == h {
			t.Errorf("QEMU's %s namespace %s, want the container's %s (the host's is %s)", ns, q, i, h)
		}
	}
	capEff, _ := strconv.ParseUint(procLine(t, qemu, "status", "CapEff:"), 16, 64)
	if capEff&(1<<21) != 0 || procLine(t, qemu, "status", "NoNewPrivs:") != "1" || procLine(t, qemu, "status", "Seccomp:") != "2" {
		t.Errorf("QEMU runs with CapEff %x (CAP_SYS_ADMIN is bit 21), NoNewPrivs %s, Seccomp %s; want no SYS_ADMIN, 1, 2",
			capEff, procLine(t, qemu, "status", "NoNewPrivs:"), procLine(t, qemu, "status", "Seccomp:"))
	}

	var host syscall.Utsname
	_ = syscall.Uname(&host)
	out, _, code := o.do("piped-in\n", "exec", id, "sh", "-c", `read x; echo "exec-got=$x"; echo "kernel=$(uname -r)"; exit 5`)
	if code != 5 || !strings.Contains(out, "exec-got=piped-in") || !strings.Contains(out, "kernel=") || strings.Contains(out, "kernel="+int8sToString(host.Release[:])) {
		t.Errorf("exec: exit %d, stdout %q; want 5, the piped line, and the guest's kernel", code, out)
	}
	out, _, code = o.do("", "exec", id, "membomb", "2048")
	if code != 128+int(syscall.SIGKILL) {
		t.Errorf("membomb 2048 MiB under a %d MiB limit: exit %d, want the guest's OOM kill (137); stdout tail %q", limit>>20, code, tail(out, 200))
	}
	if s := o.state(id); s.Status != specs.StateRunning {
		t.Fatalf("after the guest's OOM kill the container is %s, want running", s.Status)
	}

	o.ok("pause", id)
	if s := o.state(id); s.Status != "paused" {
		t.Errorf("after pause: %s", s.Status)
	}
	o.ok("resume", id)
	if s := o.state(id); s.Status != specs.StateRunning {
		t.Errorf("after resume: %s", s.Status)
	}

	o.ok("kill", id, "TERM")
	waitLine(t, lines, "got-term", 60*time.Second)
	o.waitStatus(id, specs.StateStopped, 60*time.Second)
	o.ok("delete", id)
	requireGone(t, o.root, id, []int{st.Pid, qemu}, filepath.Join("/sys/fs/cgroup/memory", cg))
}

func int8sToString(a []int8) string { return strings.TrimRight(string(int8sToBytes(a)), "\x00") }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestOCIVMNothingLeftAfterKills: the runtime SIGKILLed in the middle of
// create (its init in the namespaces and cgroup, a prestart hook
// running), and QEMU SIGKILLed under a running payload (one with a
// terminal, a pty in the guest): the container stops and delete leaves no
// process, state, cgroup or mount.
func TestOCIVMNothingLeftAfterKills(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}

	t.Run("runtime killed mid-create", func(t *testing.T) {
		o := o
		o.t = t
		marker := filepath.Join(t.TempDir(), "in-hook")
		bundle := vmBundle(t, func(s *specs.Spec) {
			//lint:ignore SA1019 prestart is what engines still use
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `touch "$0"; while [ -e "$0" ]; do sleep 0.1; done`, marker}}}}
		})
		const id = "vm-killed-create"
		cmd := exec.Command(o.bin, "--root", o.root, "create", "--bundle", bundle, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatal("the prestart hook never ran")
			}
			time.Sleep(50 * time.Millisecond)
		}
		b, _ := os.ReadFile(filepath.Join(o.root, id, "state.json"))
		var raw struct {
			Pid int `json:"pid"`
		}
		_ = json.Unmarshal(b, &raw)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.Remove(marker)
		o.ok("delete", "-f", id)
		pids := []int{cmd.Process.Pid}
		if raw.Pid > 0 {
			pids = append(pids, raw.Pid)
		}
		requireGone(t, o.root, id, pids, "")
	})

	// With a terminal, which the payload sees as its own (a pty in the
	// guest) through the engine's.
	t.Run("QEMU killed mid-run", func(t *testing.T) {
		o := o
		o.t = t
		bundle := vmBundle(t, func(s *specs.Spec) {
			s.Process.Terminal = true
			s.Process.Args = []string{"sh", "-c", `[ -t 0 ] && [ -t 1 ] && echo "tty=yes $(stty size)"; echo started; sleep 600`}
			s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
		})
		const id = "vm-killed-qemu"
		lines, _ := o.createWithTerminal(id, bundle)
		o.ok("start", id)
		waitLine(t, lines, "tty=yes 30 100", 180*time.Second)
		waitLine(t, lines, "started", 30*time.Second)
		st := o.state(id)
		qemu := qemuOf(t, o, id)
		cg := memoryCgroup(t, st.Pid)
		_ = syscall.Kill(qemu, syscall.SIGKILL)
		o.waitStatus(id, specs.StateStopped, 30*time.Second)
		o.ok("delete", id)
		requireGone(t, o.root, id, []int{st.Pid, qemu}, filepath.Join("/sys/fs/cgroup/memory", cg))
	})
}

// TestOCIVMTerminalFollowsTheEnginesResize: a VM container created with
// process.terminal and --console-socket (docker run -t) gets a pty of the
// guest at process.consoleSize, and every later size the engine gives the
// master it holds (TIOCSWINSZ, no signal to anyone, as containerd's
// ResizePty does) reaches that pty: one set between create and start,
// while the guest boots, and one while the payload runs, which the guest
// kernel announces to the payload with SIGWINCH.
func TestOCIVMTerminalFollowsTheEnginesResize(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
		s.Process.Args = []string{"sh", "-c", `trap 'echo "winch=$(stty size)"' WINCH; echo "first=$(stty size)"; while :; do sleep 1; done`}
	})
	const id = "vm-tty-resize"
	lines, master := o.createWithTerminal(id, bundle)
	resize := func(rows, cols uint16) {
		t.Helper()
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
			t.Fatal(err)
		}
	}
	resize(35, 110)
	o.ok("start", id)
	st := o.state(id)
	// The size set during the boot is the pty's before the payload reads
	// it, or reaches it just after (then with SIGWINCH).
	timeout := time.After(180 * time.Second)
	for seen := false; !seen; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the payload's terminal closed before it reported its size")
			}
			t.Logf("payload: %s", l)
			seen = strings.Contains(l, "first=35 110") || strings.Contains(l, "winch=35 110")
		case <-timeout:
			t.Fatal("the size set while the guest booted (35 110) never reached the guest's pty")
		}
	}
	resize(40, 120)
	waitLine(t, lines, "winch=40 120", 60*time.Second)
	o.ok("delete", "-f", id)
	requireGone(t, o.root, id, []int{st.Pid}, "")
}

// openPty returns a pty's master and slave, the slave sized rows x cols.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestOCIVMExecTerminalAndGuestPs: `exec -t` into a VM container gives the
// process a pty of the guest, sized as the caller's terminal and resized
// on SIGWINCH, with the caller's terminal raw while it runs and restored
// after; `ps` lists the guest's processes (the agent and the payload), not
// the guest kernel's threads and not the host's QEMU.
func TestOCIVMExecTerminalAndGuestPs(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `echo started; exec sleep 600`}
	})
	const id = "vm-exec-tty"
	lines := o.createAttached(id, bundle)
	o.ok("start", id)
	waitLine(t, lines, "started", 180*time.Second)
	st := o.state(id)

	master, slave := openPty(t, 33, 97)
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	script := `read x; echo "got=$x size=$(stty size) tty=$(tty)"; read y; echo "resized=$(stty size)"; exit 3`
	cmd := exec.Command(o.bin, "--root", o.root, "exec", "-t", id, "sh", "-c", script)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}()
	out := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			out <- strings.TrimRight(sc.Text(), "\r")
		}
		close(out)
	}()
	// Raw mode on the caller's side: its line discipline must not act.
	deadline := time.Now().Add(30 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err == nil && tio.Lflag&(unix.ICANON|unix.ECHO) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the caller's terminal was not put in raw mode")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "got=hello size=33 97 tty=/dev/pts/", 60*time.Second)
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(unix.SIGWINCH)
	time.Sleep(500 * time.Millisecond)
	if _, err := master.Write([]byte("again\r")); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "resized=40 120", 60*time.Second)
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Errorf("exec -t: %v, want exit status 3", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("exec -t did not end")
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil || after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("the caller's terminal was not restored: lflag %#x iflag %#x oflag %#x, before %#x %#x %#x", after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}

	ps := o.ok("ps", id)
	if !strings.Contains(ps, "sleep 600") || !strings.Contains(ps, "/init") || !strings.HasPrefix(ps, "PID") {
		t.Errorf("ps: want the guest's payload (sleep 600) and agent (/init) under a header, got:\n%s", ps)
	}
	for _, host := range []string{"qemu-system", "kthreadd", "[kworker"} {
		if strings.Contains(ps, host) {
			t.Errorf("ps lists %q, which is not the guest's container process:\n%s", host, ps)
		}
	}
	if _, _, code := o.do("", "ps", id, "-o", "pid"); code == 0 {
		t.Error("ps with host ps arguments of a VM container succeeded; want a refusal naming --format json")
	}
	o.ok("delete", "-f", id)
	requireGone(t, o.root, id, []int{st.Pid}, "")
}

// TestOCIVMExecConsoleSocketRelaysTheGuestPty: exec with a terminal and
// --console-socket into a VM container, as containerd runs it for `docker
// exec -t` (detached, process.json with a consoleSize, a pid file): the
// engine's pty master carries the bytes of the guest's pty, starts at the
// process's size, the engine's resize of the master (no SIGWINCH) reaches
// the guest, and the relay whose pid is in the pid file exits with the
// guest process's status. In the foreground the status is exec's own.
func TestOCIVMExecConsoleSocketRelaysTheGuestPty(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `echo started; exec sleep 600`}
	})
	const id = "vm-exec-console"
	lines := o.createAttached(id, bundle)
	o.ok("start", id)
	waitLine(t, lines, "started", 180*time.Second)
	st := o.state(id)

	// The relay is reparented to this process, as to containerd's shim,
	// so its status can be read here.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()

	dir := t.TempDir()
	sock := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	masters := receiveMaster(l)
	script := `read x; echo "got=$x size=$(stty size) tty=$(tty)"; read y; echo "resized=$(stty size)"; exit 3`
	proc := specs.Process{
		Terminal: true, ConsoleSize: &specs.Box{Height: 33, Width: 97},
		Args: []string{"sh", "-c", script}, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, Cwd: "/",
	}
	pj, _ := json.Marshal(proc)
	procFile, pidFile := filepath.Join(dir, "process.json"), filepath.Join(dir, "exec.pid")
	if err := os.WriteFile(procFile, pj, 0o600); err != nil {
		t.Fatal(err)
	}
	o.ok("exec", "--process", procFile, "--console-socket", sock, "--detach", "--pid-file", pidFile, id)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	status := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(relay, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		status <- ws
	}()
	defer func() {
		_ = unix.Kill(relay, unix.SIGKILL)
		select {
		case <-status:
		case <-time.After(10 * time.Second):
		}
	}()
	master := <-masters
	if master == nil {
		t.Fatal("no pty master on --console-socket")
	}
	defer master.Close()
	out := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			out <- strings.TrimRight(sc.Text(), "\r")
		}
		close(out)
	}()
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "got=hello size=33 97 tty=/dev/pts/", 60*time.Second)
	// What an engine does for a resize: TIOCSWINSZ on its master only.
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := master.Write([]byte("again\r")); err != nil {
		t.Fatal(err)
	}
	waitLine(t, out, "resized=40 120", 60*time.Second)
	select {
	case ws := <-status:
		if !ws.Exited() || ws.ExitStatus() != 3 {
			t.Errorf("relay status %#x, want exit 3 (the guest process's)", ws)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the relay did not exit after the guest process")
	}

	// Foreground, `exec -t --console-socket`: exec's status is the process's.
	sock2 := filepath.Join(dir, "console2.sock")
	l2, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock2, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	masters2 := receiveMaster(l2)
	got2 := make(chan string, 1)
	go func() {
		m := <-masters2
		if m == nil {
			got2 <- "no pty master"
			return
		}
		defer m.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(m) // ends with EIO once exec closes the slave
		got2 <- buf.String()
	}()
	_, stderr, code := o.do("", "exec", "-t", "--console-socket", sock2, id, "sh", "-c", "tty; echo e''x; exit 4")
	var console string
	select {
	case console = <-got2:
	case <-time.After(30 * time.Second):
		t.Fatal("the console did not close after exec -t ended")
	}
	if code != 4 || !strings.Contains(console, "/dev/pts/") || !strings.Contains(console, "ex") {
		t.Errorf("exec -t --console-socket: exit %d (want 4), stderr %q, console %q (want a /dev/pts/ name and ex)", code, stderr, console)
	}

	o.ok("delete", "-f", id)
	requireGone(t, o.root, id, []int{st.Pid}, "")
}
