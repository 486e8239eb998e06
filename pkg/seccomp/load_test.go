package seccomp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The helper process: Load is irreversible, so every test that loads a filter
// re-executes the test binary, which loads the profile from the environment,
// runs the named probes and prints "probe=errno" lines.
const (
	envHelper   = "BULWARK_SECCOMP_HELPER"
	envProfile  = "BULWARK_SECCOMP_PROFILE"
	envProbes   = "BULWARK_SECCOMP_PROBES"
	envListener = "BULWARK_SECCOMP_LISTENER"
	envDropCap  = "BULWARK_SECCOMP_DROP_SYS_ADMIN"
	envThread   = "BULWARK_SECCOMP_THREAD" // use LoadThread instead of Load
)

// probes make one syscall each and return its errno (0 on success). They use
// raw syscalls so that neither libc nor the Go runtime retries or hides them.
var probes = map[string]func() unix.Errno{
	// mkdirat on "/" cannot change anything: allowed, it fails with EEXIST.
	"mkdirat": func() unix.Errno { return mkdirat(unix.AT_FDCWD, 0o755) },
	"mkdirat700": func() unix.Errno {
		return mkdirat(unix.AT_FDCWD, 0o700)
	},
	// With an absolute path the dirfd is ignored, so 999 needs no open fd.
	"mkdirat999_700": func() unix.Errno { return mkdirat(999, 0o700) },
	"getcwd": func() unix.Errno {
		var buf [4096]byte
		_, _, e := unix.RawSyscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
		return e
	},
	"uname": func() unix.Errno {
		var u unix.Utsname
		_, _, e := unix.RawSyscall(unix.SYS_UNAME, uintptr(unsafe.Pointer(&u)), 0, 0)
		return e
	},
	"personality_query": func() unix.Errno { return personality(0xffffffff) },
	"personality0":      func() unix.Errno { return personality(0) },
	"personality8":      func() unix.Errno { return personality(8) },
	// clone3(NULL, 0) is refused with EINVAL by the kernel before it creates
	// anything, so an allowed probe is harmless.
	"clone3": func() unix.Errno {
		_, _, e := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
		return e
	},
}

func mkdirat(dirfd int, mode uint32) unix.Errno {
	p := []byte("/\x00")
	_, _, e := unix.RawSyscall(unix.SYS_MKDIRAT, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), uintptr(mode))
	return e
}

func personality(v uintptr) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0)
	return e
}

// TestHelperProcess is not a test: it is the body of the re-executed child.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("helper process for the Load tests, runs only when re-executed")
	}
	os.Exit(helperMain())
}

func helperMain() int {
	// The CAP_SYS_ADMIN check and the load happen on one thread.
	runtime.LockOSThread()
	var s specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(envProfile)), &s); err != nil {
		fmt.Printf("HELPERERR %v\n", err)
		return 3
	}
	if os.Getenv(envDropCap) == "1" {
		if err := dropSysAdmin(); err != nil {
			fmt.Printf("HELPERERR %v\n", err)
			return 3
		}
	}

	// A thread that exists before Load: TSYNC must put it under the filter.
	preThread := make(chan string)
	preGo := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		preThread <- "ready"
		<-preGo
		preThread <- strconv.Itoa(int(probes["getcwd"]()))
	}()
	<-preThread

	load := Load
	if os.Getenv(envThread) == "1" {
		load = LoadThread
	}
	fd, err := load(&s)
	if err != nil {
		fmt.Printf("LOADERR %v\n", err)
		return 0
	}
	fmt.Printf("notifyfd=%d\n", fd)
	if path := os.Getenv(envListener); path != "" {
		st := &specs.ContainerProcessState{Version: specs.Version, Pid: os.Getpid(), Metadata: "helper", State: specs.State{Version: specs.Version, ID: "helper", Status: specs.StateRunning, Pid: os.Getpid()}}
		if err := SendToListener(path, fd, st); err != nil {
			fmt.Printf("HELPERERR %v\n", err)
			return 3
		}
	}
	for _, p := range strings.Split(os.Getenv(envProbes), ",") {
		switch p {
		case "":
		case "prethread_getcwd":
			close(preGo)
			fmt.Printf("%s=%s\n", p, <-preThread)
		case "status":
			fmt.Printf("nnp=%s seccomp=%s\n", statusField("NoNewPrivs"), threadsSeccomp())
		default:
			fn, ok := probes[p]
			if !ok {
				fmt.Printf("HELPERERR unknown probe %q\n", p)
				return 3
			}
			// Flush the name first: a kill action ends the process inside fn.
			fmt.Printf("%s=", p)
			fmt.Printf("%d\n", int(fn()))
		}
	}
	return 0
}

func dropSysAdmin() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
	return unix.Capset(&hdr, &data[0])
}

func statusField(key string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// threadsSeccomp returns the distinct Seccomp: modes of all threads, e.g. "2".
func threadsSeccomp() string {
	tasks, _ := os.ReadDir("/proc/self/task")
	modes := map[string]bool{}
	for _, task := range tasks {
		b, _ := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
				modes[strings.TrimSpace(v)] = true
			}
		}
	}
	var out []string
	for m := range modes {
		out = append(out, m)
	}
	return strings.Join(out, "|")
}

type helperResult struct {
	out     map[string]string
	loadErr string
	raw     string
	status  syscall.WaitStatus
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("Load tests need root (CAP_SYS_ADMIN to load a filter without no_new_privs)")
	}
}

// runHelper loads s in a fresh child and runs probes there.
func runHelper(t *testing.T, s *specs.LinuxSeccomp, env []string, probeNames ...string) helperResult {
	t.Helper()
	profile, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"=1", envProfile+"="+string(profile), envProbes+"="+strings.Join(probeNames, ","))
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("running helper: %v", runErr)
	}
	r := helperResult{out: map[string]string{}, raw: stdout.String() + stderr.String(), status: cmd.ProcessState.Sys().(syscall.WaitStatus)}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "HELPERERR") {
			t.Fatalf("helper failed: %s\n%s", line, r.raw)
		}
		if v, ok := strings.CutPrefix(line, "LOADERR "); ok {
			r.loadErr = v
			continue
		}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				r.out[k] = v
			}
		}
	}
	return r
}

func errnoStr(e unix.Errno) string { return strconv.Itoa(int(e)) }

// allowAllBut lists every native syscall except the excluded ones as ALLOW,
// so a deny-by-default profile denies only what a test probes and the Go
// runtime keeps working.
func allowAllBut(t *testing.T, exclude ...string) specs.LinuxSyscall {
	t.Helper()
	skip := map[string]bool{}
	for _, e := range exclude {
		skip[e] = true
	}
	var names []string
	for nr := 0; nr < 1024; nr++ {
		n, err := libseccomp.ScmpSyscall(nr).GetName()
		if err != nil || skip[n] {
			continue
		}
		names = append(names, n)
	}
	if len(names) < 300 {
		t.Fatalf("only %d native syscalls resolved; libseccomp table looks broken", len(names))
	}
	return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
}

func TestLoadActions(t *testing.T) {
	requireRoot(t)
	eexist, eperm, einval, enosys := errnoStr(unix.EEXIST), errnoStr(unix.EPERM), errnoStr(unix.EINVAL), errnoStr(unix.ENOSYS)
	tests := []struct {
		name   string
		s      *specs.LinuxSeccomp
		probes []string
		want   map[string]string
		// killedBy, when set, is the signal the child must die from.
		killedBy syscall.Signal
		// exitCode and output, when set, describe how the child must end.
		exitCode int
		output   string
	}{
		{
			name:   "no filter baseline",
			s:      &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
			probes: []string{"mkdirat", "getcwd", "uname", "personality_query", "clone3"},
			want:   map[string]string{"mkdirat": eexist, "getcwd": "0", "uname": "0", "personality_query": "0", "clone3": einval},
		},
		{
			name: "errno defaults to EPERM and errnoRet overrides it",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdirat"}, Action: specs.ActErrno},
				{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV))},
			}},
			probes: []string{"mkdirat", "getcwd", "uname"},
			want:   map[string]string{"mkdirat": eperm, "getcwd": errnoStr(unix.EXDEV), "uname": "0"},
		},
		{
			name: "errnoRet 0 fakes success",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(0)},
			}},
			probes: []string{"mkdirat"},
			want:   map[string]string{"mkdirat": "0"},
		},
		{
			name: "defaultErrnoRet",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(uint(unix.ENOTSUP)), Syscalls: []specs.LinuxSyscall{
				allowAllBut(t, "uname", "getcwd"),
			}},
			probes: []string{"uname", "getcwd", "mkdirat"},
			want:   map[string]string{"uname": errnoStr(unix.ENOTSUP), "getcwd": errnoStr(unix.ENOTSUP), "mkdirat": eexist},
		},
		{
			name: "deny by default returns ENOSYS for an unmentioned clone3",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allowAllBut(t, "clone3", "uname"),
			}},
			probes: []string{"clone3", "uname"},
			want:   map[string]string{"clone3": enosys, "uname": eperm},
		},
		{
			name: "clone3 named in the profile keeps the profile's action",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allowAllBut(t, "clone3"),
				// Only clone3 calls with a size (all real ones, e.g.
				// glibc's pthread_create) are allowed; the probe passes
				// size 0 and must meet the default EPERM, not ENOSYS.
				{Names: []string{"clone3"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0, Op: specs.OpNotEqual}}},
			}},
			probes: []string{"clone3"},
			want:   map[string]string{"clone3": eperm},
		},
		{
			name: "kill-process default spares clone3 but kills on uname",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
				allowAllBut(t, "clone3", "uname"),
			}},
			probes:   []string{"clone3", "uname", "getcwd"},
			want:     map[string]string{"clone3": enosys, "uname": ""},
			killedBy: unix.SIGSYS,
		},
		{
			name: "SCMP_ACT_KILL_PROCESS rule",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"uname"}, Action: specs.ActKillProcess},
			}},
			probes:   []string{"getcwd", "uname", "mkdirat"},
			want:     map[string]string{"getcwd": "0", "uname": ""},
			killedBy: unix.SIGSYS,
		},
		{
			// TRAP raises SIGSYS in the thread; the Go runtime reports it
			// and exits 2, which is how a Go workload would end too.
			name: "SCMP_ACT_TRAP delivers SIGSYS",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"uname"}, Action: specs.ActTrap},
			}},
			probes:   []string{"getcwd", "uname"},
			want:     map[string]string{"getcwd": "0", "uname": ""},
			exitCode: 2,
			output:   "SIGSYS: bad system call",
		},
		{
			name: "SCMP_ACT_LOG lets the syscall through",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				allowAllBut(t, "getcwd", "uname"),
				{Names: []string{"getcwd"}, Action: specs.ActLog},
			}},
			probes: []string{"getcwd", "uname"},
			want:   map[string]string{"getcwd": "0", "uname": eperm},
		},
		{
			// With no tracer attached the kernel fails a TRACE-d syscall with ENOSYS.
			name: "SCMP_ACT_TRACE without a tracer",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActTrace, ErrnoRet: uptr(5)},
			}},
			probes: []string{"getcwd"},
			want:   map[string]string{"getcwd": enosys},
		},
		{
			name: "EQ on one argument",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			}},
			probes: []string{"personality_query", "personality8", "personality0"},
			want:   map[string]string{"personality_query": "0", "personality8": eperm, "personality0": "0"},
		},
		{
			name: "MASKED_EQ compares the masked argument",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				// (arg0 & 0xff) == 8: denies 8, not 0xffffffff (0xff) nor 0.
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xff, ValueTwo: 8, Op: specs.OpMaskedEqual}}},
			}},
			probes: []string{"personality_query", "personality8", "personality0"},
			want:   map[string]string{"personality_query": "0", "personality8": eperm, "personality0": "0"},
		},
		{
			name: "NE LT LE GE GT",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpNotEqual}}},
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(1), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o700, Op: specs.OpLessThan}}},
				{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uptr(2), Args: []specs.LinuxSeccompArg{{Index: 1, Value: 4096, Op: specs.OpLessEqual}}},
				{Names: []string{"uname"}, Action: specs.ActErrno, ErrnoRet: uptr(3), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpGreaterEqual}}},
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(4), Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o700, Op: specs.OpGreaterThan}}},
			}},
			// personality(8) != 0xffffffff -> EXDEV; mode 0o700 is neither
			// < nor > 0o700 but 0o755 > 0o700; getcwd size 4096 <= 4096;
			// uname's pointer >= 1. (Not clone3: failing it with anything but
			// ENOSYS breaks pthread_create in the child.)
			probes: []string{"personality_query", "personality8", "mkdirat700", "mkdirat", "getcwd", "uname"},
			want:   map[string]string{"personality_query": "0", "personality8": errnoStr(unix.EXDEV), "mkdirat700": eexist, "mkdirat": "4", "getcwd": "2", "uname": "3"},
		},
		{
			name: "conditions on different arguments are AND-ed",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
					{Index: 2, Value: 0o700, Op: specs.OpEqualTo},
					{Index: 0, Value: 999, Op: specs.OpNotEqual},
				}},
			}},
			probes: []string{"mkdirat", "mkdirat700", "mkdirat999_700"},
			want:   map[string]string{"mkdirat": eexist, "mkdirat700": eperm, "mkdirat999_700": eexist},
		},
		{
			name: "conditions repeating an argument are OR-ed like runc",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 8, Op: specs.OpEqualTo},
					{Index: 0, Value: 0, Op: specs.OpEqualTo},
				}},
			}},
			probes: []string{"personality_query", "personality8", "personality0"},
			want:   map[string]string{"personality_query": "0", "personality8": eperm, "personality0": eperm},
		},
		{
			name: "unknown and foreign-arch names are skipped, the rest enforced",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"fro", "socketcall", "arm_fadvise64_64", "getcwd"}, Action: specs.ActErrno},
				{Names: []string{"uname"}, Action: specs.ActAllow}, // same as default: redundant
			}},
			probes: []string{"getcwd", "uname"},
			want:   map[string]string{"getcwd": eperm, "uname": "0"},
		},
		{
			name: "TSYNC covers threads that existed before Load; NNP left alone",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno},
			}},
			probes: []string{"prethread_getcwd", "status"},
			want:   map[string]string{"prethread_getcwd": eperm, "nnp": "0", "seccomp": "2"},
		},
		{
			// The personality(0) allow is conditional; the unconditional
			// rule with the default action before it shadows it in
			// libseccomp, so it must be loaded, not skipped. The thread
			// that existed before Load is covered too (Load's TSYNC).
			name: "a rule equal to the default that decides is loaded",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EXDEV)), Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpLessThan, Value: 16}}},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 8}}},
				{Names: []string{"getcwd"}, Action: specs.ActAllow},
				{Names: []string{"getcwd"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpGreaterThan, Value: 0}}},
			}},
			probes: []string{"personality8", "personality0", "getcwd", "prethread_getcwd"},
			want:   map[string]string{"personality8": "0", "personality0": errnoStr(unix.EXDEV), "getcwd": "0", "prethread_getcwd": "0"},
		},
		{
			name: "LOG and SPEC_ALLOW flags",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno},
			}},
			probes: []string{"getcwd", "uname"},
			want:   map[string]string{"getcwd": eperm, "uname": "0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runHelper(t, tc.s, nil, tc.probes...)
			if r.loadErr != "" {
				t.Fatalf("Load: %s", r.loadErr)
			}
			if r.out["notifyfd"] != "-1" {
				t.Errorf("notifyfd = %q, want -1 without SCMP_ACT_NOTIFY", r.out["notifyfd"])
			}
			for k, want := range tc.want {
				got, ok := r.out[k]
				if !ok {
					t.Errorf("probe %s: no result\n%s", k, r.raw)
					continue
				}
				if got != want {
					t.Errorf("probe %s: errno %s, want %s", k, got, want)
				}
			}
			if tc.killedBy != 0 {
				if !r.status.Signaled() || r.status.Signal() != tc.killedBy {
					t.Fatalf("child status %v, want killed by %v\n%s", r.status, tc.killedBy, r.raw)
				}
			} else if r.status.ExitStatus() != tc.exitCode {
				t.Fatalf("child exit status %d, want %d\n%s", r.status.ExitStatus(), tc.exitCode, r.raw)
			}
			if !strings.Contains(r.raw, tc.output) {
				t.Fatalf("child output lacks %q:\n%s", tc.output, r.raw)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	requireRoot(t)
	getcwdDeny := []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}}
	tests := []struct {
		name    string
		s       *specs.LinuxSeccomp
		env     []string
		wantErr string
		// alsoWant, when set, is another part the error must hold.
		alsoWant string
		skipIf   func() string
	}{
		{
			name:    "invalid profile is refused before touching the kernel",
			s:       &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"},
			wantErr: `linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`,
		},
		{
			name:    "neither no_new_privs nor CAP_SYS_ADMIN",
			s:       &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: getcwdDeny},
			env:     []string{envDropCap + "=1"},
			wantErr: "requires no_new_privs or CAP_SYS_ADMIN",
		},
		{
			name: "two actions for the same syscall and arguments",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
				{Names: []string{"personality"}, Action: specs.ActKillProcess, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			}},
			wantErr: "linux.seccomp.syscalls[1].names[0]: rule for personality conflicts with an earlier rule",
		},
		{
			name:    "WAIT_KILLABLE_RECV on a libseccomp without it",
			s:       &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, Syscalls: getcwdDeny},
			wantErr: "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported by libseccomp",
			// runc's words, which its suite matches to skip the test.
			alsoWant: "error adding WaitKill flag to seccomp filter: SetWaitKill requires ",
			skipIf: func() string {
				for _, f := range SupportedFlags() {
					if f == string(specs.LinuxSeccompFlagWaitKillableRecv) {
						return "this libseccomp and kernel support WAIT_KILLABLE_RECV"
					}
				}
				return ""
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skipIf != nil {
				if why := tc.skipIf(); why != "" {
					t.Skip(why)
				}
			}
			r := runHelper(t, tc.s, tc.env, "getcwd")
			if !strings.Contains(r.loadErr, tc.wantErr) {
				t.Fatalf("Load error %q, want it to contain %q\n%s", r.loadErr, tc.wantErr, r.raw)
			}
			if !strings.Contains(r.loadErr, tc.alsoWant) {
				t.Fatalf("Load error %q, want it to contain %q\n%s", r.loadErr, tc.alsoWant, r.raw)
			}
			if _, ran := r.out["getcwd"]; ran {
				t.Fatalf("probes ran after a failed Load")
			}
		})
	}
}

func TestLoadNilAndDisabled(t *testing.T) {
	if _, err := Load(nil); err == nil {
		t.Fatal("Load(nil) succeeded")
	}
	// An empty profile loads nothing, so it is safe to run in-process.
	fd, err := Load(&specs.LinuxSeccomp{})
	if err != nil || fd != -1 {
		t.Fatalf("Load(empty) = %d, %v; want -1, nil", fd, err)
	}
	if m := statusField("Seccomp"); m != "0" {
		t.Fatalf("Load(empty) installed a filter: Seccomp: %s", m)
	}
}

// TestLoadNotify runs the whole notify path: the child loads a profile that
// notifies mkdirat, hands the fd to our listener with SendToListener, and
// blocks in mkdirat until we answer; our answer must be what it sees.
func TestLoadNotify(t *testing.T) {
	requireRoot(t)
	if api, _ := libseccomp.GetAPI(); api < apiNotify {
		t.Skipf("seccomp notify needs libseccomp API level %d, have %d", apiNotify, api)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "helper", Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mkdirat"}, Action: specs.ActNotify},
	}}

	type agentResult struct {
		st  specs.ContainerProcessState
		req *libseccomp.ScmpNotifReq
		err error

		threadOfPid bool
	}
	done := make(chan agentResult, 1)
	go func() {
		var res agentResult
		defer func() { done <- res }()
		_ = ln.SetDeadline(time.Now().Add(30 * time.Second))
		st, fd, err := acceptState(ln)
		if err != nil {
			res.err = err
			return
		}
		defer unix.Close(fd)
		res.st = st
		req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
		if err != nil {
			res.err = fmt.Errorf("NotifReceive: %w", err)
			return
		}
		res.req = req
		// The notification names the thread; it must be one of the process
		// the state describes. Checked now, while that thread is blocked.
		_, statErr := os.Stat(fmt.Sprintf("/proc/%d/task/%d", st.Pid, req.Pid))
		res.threadOfPid = statErr == nil
		res.err = libseccomp.NotifRespond(libseccomp.ScmpFd(fd), &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.ENOLINK)})
	}()

	r := runHelper(t, s, []string{envListener + "=" + sock}, "mkdirat", "getcwd")
	a := <-done
	if a.err != nil {
		t.Fatalf("agent: %v\n%s", a.err, r.raw)
	}
	if r.loadErr != "" {
		t.Fatalf("Load: %s", r.loadErr)
	}
	if fd, _ := strconv.Atoi(r.out["notifyfd"]); fd < 0 {
		t.Fatalf("notifyfd = %q, want a valid fd", r.out["notifyfd"])
	}
	mkdirat, _ := libseccomp.GetSyscallFromName("mkdirat")
	if a.req.Data.Syscall != mkdirat {
		t.Errorf("notification for syscall %d, want mkdirat (%d)", a.req.Data.Syscall, mkdirat)
	}
	if got, want := r.out["mkdirat"], errnoStr(unix.ENOLINK); got != want {
		t.Errorf("mkdirat in child: errno %s, want the agent's answer %s", got, want)
	}
	if r.out["getcwd"] != "0" {
		t.Errorf("getcwd in child: errno %s, want 0 (not notified)", r.out["getcwd"])
	}
	if len(a.st.Fds) != 1 || a.st.Fds[0] != specs.SeccompFdName || a.st.Metadata != "helper" || a.st.State.ID != "helper" || !a.threadOfPid {
		t.Errorf("agent got state %+v (notifying thread %d in that pid: %v); want fds [seccompFd], metadata and the pid of the notifying process", a.st, a.req.Pid, a.threadOfPid)
	}
}

// acceptState is a minimal seccomp agent: one connection, one state, one fd.
func acceptState(ln *net.UnixListener) (specs.ContainerProcessState, int, error) {
	var st specs.ContainerProcessState
	c, err := ln.AcceptUnix()
	if err != nil {
		return st, -1, fmt.Errorf("accept: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return st, -1, fmt.Errorf("recvmsg: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return st, -1, fmt.Errorf("control messages %v: %w", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return st, -1, fmt.Errorf("SCM_RIGHTS fds %v: %w", fds, err)
	}
	// The sender closes after one message, so the rest of the body (if the
	// kernel split it) is whatever remains until EOF.
	body := append([]byte(nil), buf[:n]...)
	for {
		m, err := c.Read(buf)
		body = append(body, buf[:m]...)
		if err != nil {
			break
		}
	}
	if err := json.Unmarshal(body, &st); err != nil {
		unix.Close(fds[0])
		return st, -1, fmt.Errorf("state JSON %q: %w", body, err)
	}
	return st, fds[0], nil
}
