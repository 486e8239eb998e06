package tests

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// allowAllBut is a filter that allows every syscall libseccomp knows except
// the named ones, which fall to the default action: the way to test
// defaultAction and defaultErrnoRet without starving the payload.
func allowAllBut(t *testing.T, except ...string) []specs.LinuxSyscall {
	t.Helper()
	var names []string
	for nr := 0; nr < 1024; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err != nil || contains(except, name) {
			continue
		}
		names = append(names, name)
	}
	if len(names) < 300 {
		t.Fatalf("libseccomp knows only %d syscalls", len(names))
	}
	return []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}
}

func TestConfigSeccompActionsReachThePayload(t *testing.T) {
	e := newEnv(t)
	eacces := uint(13)
	for _, tc := range []struct {
		name string
		sc   func(t *testing.T) *specs.LinuxSeccomp
		args []string
		want string
		code int
	}{
		{"errno rule with errnoRet", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &eacces}}}
		}, []string{"getppid"}, "EACCES", 0},
		{"errno rule defaults to EPERM", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}}}
		}, []string{"getppid"}, "EPERM", 0},
		{"defaultErrnoRet", func(t *testing.T) *specs.LinuxSeccomp {
			enosys := uint(38)
			return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enosys, Syscalls: allowAllBut(t, "getppid")}
		}, []string{"getppid"}, "ENOSYS", 0},
		{"argument rule matches", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &eacces,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0008, Op: specs.OpEqualTo}}}}}
		}, []string{"personality", "PER_LINUX32"}, "EACCES", 0},
		{"argument rule lets other values through", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: &eacces,
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x0008, Op: specs.OpEqualTo}}}}}
		}, []string{"personality", "PER_LINUX"}, "OK", 0},
		{"log allows the call", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActLog}}}
		}, []string{"getppid"}, "OK", 0},
		{"kill process exits 128+SIGSYS", func(*testing.T) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}}}
		}, []string{"getppid"}, "", 128 + int(unix.SIGSYS)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.sc(t)
			r := e.runIn(func(s *specs.Spec) { s.Linux.Seccomp = sc }, append([]string{"/usr/local/bin/syscall"}, tc.args...)...)
			if r.code != tc.code || strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("want exit %d and %q: %v", tc.code, tc.want, r)
			}
		})
	}
}

// A syscall newer than every syscall a deny-by-default profile names gets
// ENOSYS, so libc's fallbacks work, as in runc; one the profile's range
// covers but does not allow keeps the profile's EPERM.
func TestSeccompSyscallsNewerThanTheProfileGetENOSYS(t *testing.T) {
	e := newEnv(t)
	var upTo []string
	for nr := 0; nr < 400; nr++ {
		if name, err := libseccomp.ScmpSyscall(nr).GetName(); err == nil && name != "getppid" {
			upTo = append(upTo, name)
		}
	}
	sc := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: upTo, Action: specs.ActAllow}}}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"raw", "450"}, "ENOSYS"}, // above the profile's newest (< 400)
		{[]string{"getppid"}, "EPERM"},     // within its range, not allowed
	} {
		r := e.runIn(func(s *specs.Spec) { s.Linux.Seccomp = sc }, append([]string{"/usr/local/bin/syscall"}, tc.args...)...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("syscall %v under a profile naming syscalls up to 399: want %s: %v", tc.args, tc.want, r)
		}
	}
}

// kmsgAfter returns kernel log lines written while fn ran and shortly
// after: without auditd, kauditd prints seccomp records to the kernel log
// from its own thread, so a record can land after fn has returned. It polls
// until done(log) or a few seconds have passed.
func kmsgAfter(t *testing.T, fn func(), done func(string) bool) string {
	t.Helper()
	f, err := os.OpenFile("/dev/kmsg", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skipf("cannot read the kernel log to see seccomp audit records: %v", err)
	}
	defer f.Close()
	if _, err := unix.Seek(int(f.Fd()), 0, io.SeekEnd); err != nil {
		t.Skipf("seek /dev/kmsg: %v", err)
	}
	fn()
	var b strings.Builder
	buf := make([]byte, 8192)
	for deadline := time.Now().Add(3 * time.Second); ; {
		n, err := unix.Read(int(f.Fd()), buf)
		if n > 0 {
			b.Write(buf[:n])
			continue
		}
		if errors.Is(err, unix.EPIPE) {
			continue // overwritten records: keep reading
		}
		if done(b.String()) || time.Now().After(deadline) {
			return b.String()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditRecord reports whether log holds a seccomp record (type=1326) of our
// syscall payload for syscall nr with the given action code.
func auditRecord(log string, nr int, code string) bool {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "type=1326") && strings.Contains(l, `comm="syscall"`) &&
			strings.Contains(l, " syscall="+itoa(nr)+" ") && strings.HasSuffix(strings.TrimSpace(l), "code="+code) {
			return true
		}
	}
	return false
}

func TestConfigSeccompLogActionAndLogFlagWriteAuditRecords(t *testing.T) {
	e := newEnv(t)
	eacces := uint(13)
	for _, tc := range []struct {
		name  string
		sc    *specs.LinuxSeccomp
		code  string
		want  bool
		print string
	}{
		{"SCMP_ACT_LOG", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActLog}}}, "0x7ffc0000", true, "OK"},
		{"errno without the log flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &eacces}}}, "0x50000", false, "EACCES"},
		{"errno with SECCOMP_FILTER_FLAG_LOG", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &eacces}}}, "0x50000", true, "EACCES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			// An expected record ends the wait at once; the absence of one
			// is only believed after the full wait.
			log := kmsgAfter(t, func() {
				r = e.runIn(func(s *specs.Spec) { s.Linux.Seccomp = tc.sc }, "/usr/local/bin/syscall", "getppid")
			}, func(log string) bool { return tc.want && auditRecord(log, unix.SYS_GETPPID, tc.code) })
			if strings.TrimSpace(r.stdout) != tc.print {
				t.Fatalf("want %s: %v", tc.print, r)
			}
			if got := auditRecord(log, unix.SYS_GETPPID, tc.code); got != tc.want {
				t.Fatalf("audit record code=%s present: %v, want %v; kernel log:\n%s", tc.code, got, tc.want, log)
			}
		})
	}
}

func TestConfigSeccompUnknownFlagIsRefused(t *testing.T) {
	e := newEnv(t)
	r := e.runIn(func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}}
	}, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "linux.seccomp.flags[0]") {
		t.Fatalf("unknown seccomp flag: %v", r)
	}
}

// TestConfigSeccompNotifyReachesTheListener is a seccomp agent: it receives
// the notify fd and the container state on listenerPath, then answers the
// container's getppid with EXDEV, which only it can produce.
func TestConfigSeccompNotifyReachesTheListener(t *testing.T) {
	if api, _ := libseccomp.GetAPI(); api < 6 {
		t.Skipf("libseccomp API level %d < 6: no user notification support", api)
	}
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type agentResult struct {
		state specs.ContainerProcessState
		seen  string
		err   error
	}
	done := make(chan agentResult, 1)
	go func() {
		var res agentResult
		defer func() { done <- res }()
		l.SetDeadline(time.Now().Add(30 * time.Second))
		c, err := l.AcceptUnix()
		if err != nil {
			res.err = err
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
		var body []byte
		var fd = -1
		for {
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if oobn > 0 {
				msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
				for _, m := range msgs {
					if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
						fd = fds[0]
					}
				}
			}
			body = append(body, buf[:n]...)
			if err != nil || n == 0 {
				break
			}
		}
		if fd < 0 {
			res.err = errors.New("no fd in the listener message")
			return
		}
		defer unix.Close(fd)
		if err := json.Unmarshal(body, &res.state); err != nil {
			res.err = err
			return
		}
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			res.err = err
			return
		}
		res.seen, _ = req.Data.Syscall.GetName()
		// libseccomp-golang negates Error for the kernel: pass the errno itself.
		res.err = libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXDEV)})
	}()
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"/usr/local/bin/syscall", "getppid"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "bwt-meta",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActNotify}}}
	})
	id := e.id()
	r := e.bw("run", "-b", bundle, id)
	res := <-done
	if res.err != nil {
		t.Fatalf("agent: %v (run: %v)", res.err, r)
	}
	if r.code != 0 || strings.TrimSpace(r.stdout) != "EXDEV" {
		t.Fatalf("the agent's answer (to %q) did not reach the payload: %v", res.seen, r)
	}
	st := res.state
	if res.seen != "getppid" || st.Metadata != "bwt-meta" || st.State.ID != id || st.State.Bundle != bundle ||
		st.Pid <= 0 || st.State.Pid != st.Pid || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName {
		t.Fatalf("agent saw syscall %q, state %+v", res.seen, st)
	}
}

// Without no_new_privs the filter is loaded while the init still has its
// privileges, before its own fd cleanup: that cleanup must not be subject to
// the payload's filter, so a profile that denies close_range (runtime-tools'
// default allowlist predates it) still runs.
func TestSeccompWithoutNoNewPrivsSparesTheInitsFdCleanup(t *testing.T) {
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

// continuingAgent is a seccomp agent on a new socket: every notify fd it is
// sent, it lets each trapped syscall go on (SECCOMP_USER_NOTIF_FLAG_CONTINUE),
// as runc's test agent does with the syscalls it does not handle itself.
func continuingAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4))
				fd := -1
				for fd < 0 {
					n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
					if oobn > 0 {
						msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
						for _, m := range msgs {
							if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
								fd = fds[0]
							}
						}
					}
					if err != nil || n == 0 {
						break
					}
				}
				if fd < 0 {
					return
				}
				defer unix.Close(fd)
				for {
					req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
					if err != nil {
						if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
							continue
						}
						return
					}
					_ = libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Flags: libseccomp.NotifRespFlagContinue})
				}
			}()
		}
	}()
	return sock
}

// A notify filter on syscalls the init makes itself between loading the
// filter and execve (runc's "important syscalls" case) must not deadlock
// run: an agent that lets them go on is all the container needs, with or
// without no_new_privs (which moves the filter's load).
func TestSeccompNotifyOnTheInitsOwnSyscallsDoesNotHang(t *testing.T) {
	if api, _ := libseccomp.GetAPI(); api < 6 {
		t.Skipf("libseccomp API level %d < 6: no user notification support", api)
	}
	for _, nnp := range []bool{false, true} {
		e := newEnv(t)
		sock := continuingAgent(t)
		r := e.runIn(func(s *specs.Spec) {
			s.Process.NoNewPrivileges = nnp
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"execve", "openat", "open", "read", "close", "fcntl"}, Action: specs.ActNotify}}}
		}, "sh", "-c", "echo ran")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "ran" {
			t.Fatalf("noNewPrivileges %v: %v", nnp, r)
		}
	}
}

// Without noNewPrivileges the init holds CAP_SYS_ADMIN until execve so it
// can load the filter last; the payload never has it. A container and an
// exec'd process under the default filter, without noNewPrivileges, as
// root and as uid 1000, have exactly the config's capabilities (root: its
// bounding set; anyone else: none) and cannot set the hostname, which
// CAP_SYS_ADMIN would allow.
func TestWithoutNoNewPrivilegesThePayloadHoldsNoCapabilityTheInitKeptForItsFilter(t *testing.T) {
	e := newEnv(t)
	def, _, err := profiles.Resolve("default")
	if err != nil {
		t.Fatal(err)
	}
	noNNP := func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = def
	}
	// CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE: testrootfs.DefaultSpec's.
	const configCaps = "0000000020000420"
	const script = `grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status | tr -d '\t'; hostname evil 2>/dev/null && echo hostname=set || echo hostname=refused`
	id, _ := e.detached(noNNP)
	for _, c := range []struct {
		uid  uint32
		want string
	}{{0, configCaps}, {1000, "0000000000000000"}} {
		want := map[string]string{"CapEff": c.want, "CapPrm": c.want, "CapAmb": "0000000000000000", "hostname": "refused"}
		r := e.runIn(func(s *specs.Spec) {
			noNNP(s)
			s.Process.User = specs.User{UID: c.uid, GID: c.uid}
		}, "sh", "-c", script)
		ex := e.bw("exec", "--user", strconv.Itoa(int(c.uid)), id, "sh", "-c", script)
		for what, r := range map[string]result{"run": r, "exec": ex} {
			got := kv(strings.ReplaceAll(r.stdout, ":", "="))
			for k, v := range want {
				if r.code != 0 || got[k] != v {
					t.Errorf("%s as uid %d: %s=%q, want %q: %v", what, c.uid, k, got[k], v, r)
				}
			}
		}
	}
}
