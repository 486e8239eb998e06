package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

func withSeccomp(s *specs.LinuxSeccomp) func(*specs.Spec) {
	return func(sp *specs.Spec) {
		sp.Process.NoNewPrivileges = true
		sp.Linux.Seccomp = s
	}
}

type syscallCase struct {
	args []string // arguments of the syscall payload
	want string   // its output: OK or an errno name
}

// runSyscalls runs every case through the syscall payload in ONE container
// (a shell loop), so a long table costs one container start, and returns
// the payload's answer per case in order.
func runSyscalls(t *testing.T, e *env, s *specs.LinuxSeccomp, cases []syscallCase) []string {
	t.Helper()
	var script strings.Builder
	for i, c := range cases {
		// Single quotes: arguments such as CLONE_NEWNET|CLONE_NEWUTS hold
		// shell metacharacters.
		fmt.Fprintf(&script, "echo \"%d=$(/usr/local/bin/syscall '%s' 2>&1)\"\n", i, strings.Join(c.args, "' '"))
	}
	r := e.runIn(withSeccomp(s), "sh", "-c", script.String())
	if r.code != 0 {
		t.Fatalf("container: %v", r)
	}
	got := make([]string, len(cases))
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var i int
		var v string
		if n, _ := fmt.Sscanf(l, "%d=%s", &i, &v); n == 2 && i < len(cases) {
			got[i] = v
		}
	}
	return got
}

func checkSyscalls(t *testing.T, cases []syscallCase, got []string) {
	t.Helper()
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("syscall %s: got %q, want %s", strings.Join(c.args, " "), got[i], c.want)
		}
	}
}

func TestDefaultSeccompProfileDeniesEscapeSyscallsFromInside(t *testing.T) {
	e := newEnv(t)
	cases := []syscallCase{
		// The namespace rules: creating one is EPERM, plain fork is fine.
		{[]string{"unshare", "CLONE_NEWUSER"}, "EPERM"},
		{[]string{"unshare", "CLONE_NEWNS"}, "EPERM"},
		{[]string{"unshare", "CLONE_NEWNET|CLONE_NEWUTS"}, "EPERM"},
		{[]string{"unshare", "CLONE_FILES"}, "OK"},
		{[]string{"clone", "CLONE_NEWUSER"}, "EPERM"},
		{[]string{"clone", "CLONE_NEWPID"}, "EPERM"},
		{[]string{"clone", "0"}, "OK"},
		{[]string{"setns", "/proc/1/ns/net"}, "EPERM"},
		// clone3 cannot be filtered by flags: ENOSYS drives libc to clone.
		{[]string{"raw", "435"}, "ENOSYS"},
		// Socket families.
		{[]string{"socket", "AF_INET", "SOCK_STREAM", "0"}, "OK"},
		{[]string{"socket", "AF_INET6", "SOCK_DGRAM", "0"}, "OK"},
		{[]string{"socket", "AF_UNIX", "SOCK_STREAM", "0"}, "OK"},
		{[]string{"socket", "AF_NETLINK", "SOCK_RAW", "NETLINK_ROUTE"}, "OK"},
		{[]string{"socket", "AF_PACKET", "SOCK_RAW", "ETH_P_ALL"}, "EAFNOSUPPORT"},
		{[]string{"socket", "AF_VSOCK", "SOCK_STREAM", "0"}, "EAFNOSUPPORT"},
		{[]string{"socket", "AF_ALG", "SOCK_SEQPACKET", "0"}, "EAFNOSUPPORT"},
		{[]string{"socket", "0x100000002", "SOCK_STREAM", "0"}, "EAFNOSUPPORT"},
		// TIOCSTI however the command is encoded. Permitted, it would be
		// ENOTTY here (stdin is not a terminal).
		{[]string{"ioctl", "TIOCSTI"}, "EPERM"},
		{[]string{"ioctl", "0xffffffff00005412"}, "EPERM"},
		{[]string{"ioctl", "0x100000000|TIOCLINUX"}, "EPERM"},
		{[]string{"ioctl", "TIOCSETD"}, "ENOTTY"},
		// personality: safe personas only.
		{[]string{"personality", "PER_LINUX32"}, "OK"},
		{[]string{"personality", "0xffffffff"}, "OK"},
		{[]string{"personality", "ADDR_NO_RANDOMIZE"}, "ENOSYS"},
		{[]string{"personality", "READ_IMPLIES_EXEC"}, "ENOSYS"},
		// Explicit denials.
		{[]string{"ptrace"}, "EPERM"},
		{[]string{"keyctl"}, "EPERM"},
		{[]string{"add_key"}, "EPERM"},
		{[]string{"bpf"}, "EPERM"},
		{[]string{"perf_event_open"}, "EPERM"},
		{[]string{"userfaultfd"}, "EPERM"},
		{[]string{"io_uring_setup"}, "EPERM"},
		{[]string{"mount"}, "EPERM"},
		{[]string{"umount2"}, "EPERM"},
		{[]string{"fsopen"}, "EPERM"},
		{[]string{"open_tree"}, "EPERM"},
		{[]string{"pivot_root"}, "EPERM"},
		{[]string{"open_by_handle_at"}, "EPERM"},
		{[]string{"name_to_handle_at"}, "EPERM"},
		{[]string{"kexec_load"}, "EPERM"},
		{[]string{"kexec_file_load"}, "EPERM"},
		{[]string{"init_module"}, "EPERM"},
		{[]string{"finit_module"}, "EPERM"},
		{[]string{"delete_module"}, "EPERM"},
		{[]string{"reboot"}, "EPERM"},
		{[]string{"swapon"}, "EPERM"},
		{[]string{"acct"}, "EPERM"},
		{[]string{"settimeofday"}, "EPERM"},
		{[]string{"clock_settime"}, "EPERM"},
		{[]string{"syslog"}, "EPERM"},
		{[]string{"iopl"}, "EPERM"},
		{[]string{"ioperm"}, "EPERM"},
		{[]string{"fanotify_init"}, "EPERM"},
		// Not in the allowlist at all: looks like a kernel without it.
		{[]string{"sethostname"}, "ENOSYS"},
		// Allowed and harmless.
		{[]string{"getppid"}, "OK"},
	}
	checkSyscalls(t, cases, runSyscalls(t, e, profiles.Default(), cases))
}

// TestIoctlRuleMustMaskTheUpperHalf shows why the default profile masks
// ioctl's command: under a profile that compares all 64 bits, TIOCSTI with
// junk in the upper half reaches the kernel (ENOTTY, i.e. permitted), while
// under the default it is refused. The first row is what makes this test
// able to fail: if the payload or kernel stopped truncating, it would show.
func TestIoctlRuleMustMaskTheUpperHalf(t *testing.T) {
	e := newEnv(t)
	naive := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
		Names: []string{"ioctl"}, Action: specs.ActErrno,
		Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 0x5412}},
	}}}
	for _, tc := range []struct {
		name    string
		profile *specs.LinuxSeccomp
		cases   []syscallCase
	}{
		{"naive 64-bit equality is bypassed", naive, []syscallCase{
			{[]string{"ioctl", "TIOCSTI"}, "EPERM"},
			{[]string{"ioctl", "0xffffffff00005412"}, "ENOTTY"},
		}},
		{"default profile masks to 32 bits", profiles.Default(), []syscallCase{
			{[]string{"ioctl", "TIOCSTI"}, "EPERM"},
			{[]string{"ioctl", "0xffffffff00005412"}, "EPERM"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSyscalls(t, tc.cases, runSyscalls(t, e, tc.profile, tc.cases))
		})
	}
}

func TestDefaultSeccompProfileRunsOrdinaryPrograms(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"busybox shell with pipes, forks and files", []string{"sh", "-c", "echo hello | cat; ls / >/dev/null && echo listed; x=$(id -u); echo uid=$x"}, "hello\nlisted\nuid=0\n"},
		{"static Go payload with threads", []string{"/usr/local/bin/spin", "getppid", "1000"}, `"op": "getppid"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.runIn(withSeccomp(profiles.Default()), tc.args...)
			if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("want exit 0 and %q in stdout: %v", tc.want, r)
			}
		})
	}
}

func TestStrictSeccompProfileAllowsComputeOnly(t *testing.T) {
	e := newEnv(t)
	const sigsys = 128 + 31
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"compute loop runs", []string{"/usr/local/bin/spin", "cpu", "1"}, 0, `"iterations"`},
		{"raw syscall loop runs", []string{"/usr/local/bin/spin", "getppid", "1000"}, 0, `"op": "getppid"`},
		{"open read-only is allowed", []string{"/usr/local/bin/syscall", "raw", "257", "-100", "0", "0"}, 0, "EFAULT"},
		// Writing is the mounts' business: strict's rootfs is read-only,
		// so only /tmp takes new files (see TestStrictProfileRunsDebianPrograms).
		{"open with O_CREAT passes the filter", []string{"/usr/local/bin/syscall", "raw", "257", "-100", "0", "0x41"}, 0, "EFAULT"},
		{"a unix socket is refused, not killed (glibc's nscd lookup)", []string{"/usr/local/bin/syscall", "socket", "AF_UNIX", "SOCK_STREAM", "0"}, 0, "EPERM"},
		{"fork is refused", []string{"/usr/local/bin/syscall", "clone", "0"}, 0, "EPERM"},
		{"clone3 is ENOSYS", []string{"/usr/local/bin/syscall", "raw", "435"}, 0, "ENOSYS"},
		{"a socket kills the process", []string{"/usr/local/bin/syscall", "socket", "AF_INET", "SOCK_STREAM", "0"}, sigsys, ""},
		{"mount kills the process", []string{"/usr/local/bin/syscall", "mount"}, sigsys, ""},
		{"a shell runs its builtins", []string{"sh", "-c", "echo hi"}, 0, "hi"},
		{"a shell cannot start another program", []string{"sh", "-c", "/usr/local/bin/spin cpu 0.01; echo after"}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.runIn(withSeccomp(profiles.Strict()), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("want exit %d and %q in stdout: %v", tc.code, tc.want, r)
			}
			if tc.code == sigsys && strings.Contains(r.stdout, "OK") {
				t.Errorf("the call succeeded before the process died: %v", r)
			}
		})
	}
}

func TestSeccompCommandExplainsAndExportsProfiles(t *testing.T) {
	e := newEnv(t)
	naive := filepath.Join(t.TempDir(), "naive.json")
	b, _ := json.Marshal(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
		Names: []string{"ioctl"}, Action: specs.ActErrno,
		Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 0x5412}},
	}}})
	if err := os.WriteFile(naive, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"list", []string{"seccomp", "list"}, 0, []string{"default ", "strict ", "unconfined "}},
		{"TIOCSTI with high bits", []string{"seccomp", "explain", "default", "ioctl", "0", "0xffffffff00005412"}, 0,
			[]string{"denied with EPERM by rule #", "args[1] & 0xffffffff == 0x5412 (TIOCSTI: pushes input into the terminal of another process)", "agrees: SCMP_ACT_ERRNO(EPERM)"}},
		{"clone3", []string{"seccomp", "explain", "default", "clone3"}, 0, []string{"ENOSYS", "agrees: SCMP_ACT_ERRNO(ENOSYS)"}},
		{"allowlist", []string{"seccomp", "explain", "default", "getpid"}, 0, []string{"getpid(): allowed by rule #0", "agrees: SCMP_ACT_ALLOW"}},
		{"strict kills", []string{"seccomp", "explain", "strict", "socket", "2", "1", "0"}, 0, []string{"kills the whole process", "SCMP_ACT_KILL_PROCESS"}},
		{"file: naive rule is bypassed", []string{"seccomp", "explain", naive, "ioctl", "0", "0xffffffff00005412"}, 0, []string{"allowed by the default action", "agrees: SCMP_ACT_ALLOW"}},
		{"unconfined", []string{"seccomp", "explain", "unconfined", "mount"}, 0, []string{"allowed no seccomp filter"}},
		{"unknown profile", []string{"seccomp", "explain", "defualt", "getpid"}, 1, []string{`unknown seccomp profile "defualt" (known: default, netadmin, strict, unconfined`}},
		{"unknown syscall", []string{"seccomp", "explain", "default", "getpidd"}, 1, []string{`syscall "getpidd" is not known`}},
		{"bad argument", []string{"seccomp", "explain", "default", "ioctl", "zero"}, 1, []string{`argument 0: "zero" is not a number`}},
		{"allowed chown still needs CAP_CHOWN", []string{"seccomp", "explain", "default", "chown"}, 0, []string{"chown(): allowed", "no CAP_CHOWN", "--cap-add CHOWN"}},
		{"explain: syscall and capability", []string{"explain", "chown"}, 0, []string{"seccomp (default profile): chown allowed", "--cap-add CHOWN or --profile dev"}},
		{"explain: read-only rootfs", []string{"explain", "/etc"}, 0, []string{"EROFS", "--writable"}},
		{"explain: capability", []string{"explain", "--profile", "webapp", "CAP_NET_BIND_SERVICE"}, 0, []string{"the webapp profile has it"}},
		{"explain: nonsense", []string{"explain", "getpidd"}, 1, []string{`"getpidd" is not a syscall`}},
		{"export text", []string{"seccomp", "export", "strict"}, 0, []string{"   0: ld [arch]", "ret SCMP_ACT_KILL_PROCESS", " instructions"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.bw(tc.args...)
			out := r.stdout + r.stderr
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.code, r)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// The raw export is the program itself: 8 bytes per instruction, as
	// many as the text export counts.
	text := e.mustOK("seccomp", "export", "default")
	raw := e.mustOK("seccomp", "export", "--format", "raw", "default")
	var n int
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d instructions", &n); err != nil || n < 100 || len(raw) != 8*n {
		t.Errorf("text export says %d instructions (%v), raw export has %d bytes", n, err, len(raw))
	}
}
