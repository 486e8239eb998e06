package profiles_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

var builtins = []struct {
	name  string
	s     func() *specs.LinuxSeccomp
	archs []specs.Arch
}{
	{"default", profiles.Default, []specs.Arch{specs.ArchX86_64, specs.ArchX32}},
	{"strict", profiles.Strict, []specs.Arch{specs.ArchX86_64}},
}

// TestProfilesAreLoadable: every name is one libseccomp knows (an unknown
// name is silently skipped by the loader, which for an allowlist means a
// missing syscall and for a denial means a hole), the profile validates,
// and libseccomp compiles it.
func TestProfilesAreLoadable(t *testing.T) {
	for _, b := range builtins {
		t.Run(b.name, func(t *testing.T) {
			s := b.s()
			for i, sc := range s.Syscalls {
				for _, n := range sc.Names {
					if !seccomp.KnownSyscall(n) {
						t.Errorf("syscalls[%d]: %q is not known to libseccomp %s", i, n, seccomp.Version())
					}
				}
			}
			if err := seccomp.Validate(s); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if w := seccomp.Warnings(s); len(w) > 0 {
				t.Errorf("Warnings: %v", w)
			}
			raw, err := seccomp.ExportBPF(s)
			if err != nil {
				t.Fatalf("ExportBPF: %v", err)
			}
			// The kernel refuses programs longer than BPF_MAXINSNS.
			if n := len(raw) / 8; n == 0 || n > 4096 {
				t.Errorf("program has %d instructions", n)
			}
			if !slices.Equal(s.Architectures, b.archs) {
				t.Errorf("architectures = %v, want %v", s.Architectures, b.archs)
			}
			if r := profiles.Reasons(b.name); len(r) != len(s.Syscalls) || slices.Contains(r, "") {
				t.Errorf("Reasons(%s) has %d entries (empty ones: %v) for %d rules", b.name, len(r), slices.Contains(r, ""), len(s.Syscalls))
			}
		})
	}
}

// TestDefaultDecisions pins each documented decision of the default
// profile, through the same evaluation explain uses (which is itself
// checked against the BPF in pkg/seccomp/explain).
func TestDefaultDecisions(t *testing.T) {
	s := profiles.Default()
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != uint(unix.ENOSYS) {
		t.Fatalf("default action = %s/%v, want SCMP_ACT_ERRNO with ENOSYS", s.DefaultAction, s.DefaultErrnoRet)
	}
	eperm := []string{
		"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
		"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "io_uring_register",
		"mount", "umount2", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pivot_root",
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
		"open_by_handle_at", "name_to_handle_at", "setns",
		"acct", "swapon", "swapoff", "reboot", "settimeofday", "clock_settime",
		"syslog", "quotactl", "lookup_dcookie", "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
		"iopl", "ioperm", "create_module", "get_kernel_syms", "query_module", "fanotify_init",
	}
	for _, n := range eperm {
		t.Run("EPERM "+n, func(t *testing.T) {
			r := explain.Evaluate(s, n, [6]uint64{})
			if r.Action != specs.ActErrno || r.Errno != uint(unix.EPERM) {
				t.Errorf("%s: %s %s, want EPERM", n, r.Outcome(), r.Why(nil))
			}
		})
	}
	allowed := []string{"read", "write", "openat", "execve", "arch_prctl", "faccessat2", "clone", "unshare", "adjtimex", "chroot", "getpid", "socket", "ioctl", "seccomp", "landlock_create_ruleset"}
	for _, n := range allowed {
		t.Run("allowed "+n, func(t *testing.T) {
			args := [6]uint64{}
			if n == "socket" {
				args[0] = unix.AF_INET
			}
			if r := explain.Evaluate(s, n, args); r.Action != specs.ActAllow {
				t.Errorf("%s: %s %s, want allowed", n, r.Outcome(), r.Why(nil))
			}
		})
	}
	for _, n := range []string{"clone3", "modify_ldt", "socketcall", "sethostname"} {
		t.Run("ENOSYS "+n, func(t *testing.T) {
			r := explain.Evaluate(s, n, [6]uint64{})
			if r.Action != specs.ActErrno || r.Errno != uint(unix.ENOSYS) {
				t.Errorf("%s: %s %s, want ENOSYS", n, r.Outcome(), r.Why(nil))
			}
		})
	}
}

// TestNoSyscallBothAllowedAndDenied: an unconditional allow would make
// libseccomp drop every conditional denial of the same syscall, and an
// unconditional allow next to an unconditional denial is a conflict.
func TestNoSyscallBothAllowedAndDenied(t *testing.T) {
	for _, b := range builtins {
		t.Run(b.name, func(t *testing.T) {
			uncond := map[string]int{}
			mentioned := map[string][]int{}
			for i, sc := range b.s().Syscalls {
				for _, n := range sc.Names {
					mentioned[n] = append(mentioned[n], i)
					if len(sc.Args) == 0 {
						if j, dup := uncond[n]; dup {
							t.Errorf("%s has unconditional rules #%d and #%d", n, j, i)
						}
						uncond[n] = i
					}
				}
			}
			for n, i := range uncond {
				if len(mentioned[n]) > 1 {
					t.Errorf("%s: unconditional rule #%d would shadow rules %v", n, i, mentioned[n])
				}
			}
		})
	}
}

func TestNamesAndByName(t *testing.T) {
	if got := profiles.Names(); !slices.Equal(got, []string{"default", "netadmin", "strict", "unconfined"}) {
		t.Errorf("Names() = %v", got)
	}
	for _, tc := range []struct {
		name    string
		wantNil bool
		wantErr string
	}{
		{"default", false, ""},
		{"strict", false, ""},
		{"netadmin", false, ""},
		{"unconfined", true, ""},
		{"Default", true, `unknown seccomp profile "Default" (known: default, netadmin, strict, unconfined)`},
		{"", true, "unknown seccomp profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := profiles.ByName(tc.name)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if (s == nil) != tc.wantNil {
				t.Errorf("profile nil = %v, want %v", s == nil, tc.wantNil)
			}
		})
	}
	// Each call returns a copy: a caller editing its profile must not
	// change the next container's.
	a := profiles.Default()
	a.Syscalls[0].Names[0] = "changed"
	if profiles.Default().Syscalls[0].Names[0] == "changed" {
		t.Error("Default() shares its slices between calls")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	obj := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}}
	seccompFile := write("seccomp.json", obj)
	configFile := write("config.json", &specs.Spec{Version: specs.Version, Linux: &specs.Linux{Seccomp: obj}})
	noSeccomp := write("noseccomp.json", &specs.Spec{Version: specs.Version, Linux: &specs.Linux{}})
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("[1,2"), 0o600)

	for _, tc := range []struct {
		name, arg   string
		wantDefault specs.LinuxSeccompAction // "" = nil profile
		wantReasons bool
		wantErr     string
	}{
		{"built-in", "default", specs.ActErrno, true, ""},
		{"seccomp object", seccompFile, specs.ActKillProcess, false, ""},
		{"whole config.json", configFile, specs.ActKillProcess, false, ""},
		{"config without seccomp", noSeccomp, "", false, ""},
		{"unknown name", "defualt", "", false, `unknown seccomp profile "defualt"`},
		{"missing file", filepath.Join(dir, "missing.json"), "", false, "no such file"},
		{"not JSON", bad, "", false, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, reasons, err := profiles.Resolve(tc.arg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := specs.LinuxSeccompAction("")
			if s != nil {
				got = s.DefaultAction
			}
			if got != tc.wantDefault || (reasons != nil) != tc.wantReasons {
				t.Errorf("defaultAction %q reasons %v, want %q %v", got, reasons != nil, tc.wantDefault, tc.wantReasons)
			}
		})
	}
}

// netadmin may open packet sockets (capture inside its own netns); the
// default may not, and both still refuse the rest of the rare families.
func TestNetAdminAllowsPacketSocketsOnly(t *testing.T) {
	for _, tc := range []struct {
		profile string
		family  uint64
		want    string
	}{
		{"default", unix.AF_PACKET, "EAFNOSUPPORT"},
		{"netadmin", unix.AF_PACKET, "allow"},
		{"netadmin", unix.AF_INET, "allow"},
		{"netadmin", unix.AF_VSOCK, "EAFNOSUPPORT"},
		{"netadmin", unix.AF_ALG, "EAFNOSUPPORT"},
		{"netadmin", 0xffffffff00000011, "EAFNOSUPPORT"},
	} {
		s, err := profiles.ByName(tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		got := "allow"
		for _, r := range s.Syscalls {
			if !slices.Contains(r.Names, "socket") || r.Action != specs.ActErrno || len(r.Args) != 1 {
				continue
			}
			a := r.Args[0]
			if (a.Op == specs.OpEqualTo && tc.family == a.Value) || (a.Op == specs.OpGreaterThan && tc.family > a.Value) {
				got = unix.ErrnoName(unix.Errno(*r.ErrnoRet))
			}
		}
		if got != tc.want {
			t.Errorf("%s: socket(%#x) -> %s, want %s", tc.profile, tc.family, got, tc.want)
		}
	}
}
