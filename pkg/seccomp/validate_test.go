package seccomp

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

func uptr(v uint) *uint { return &v }

func TestValidate(t *testing.T) {
	allow := specs.ActAllow
	tests := []struct {
		name string
		s    *specs.LinuxSeccomp
		// wantErrs lists substrings that must each appear in the error;
		// empty means Validate must succeed.
		wantErrs []string
		sentinel error
	}{
		{name: "nil", s: nil},
		{name: "empty object is unconfined like runc", s: &specs.LinuxSeccomp{}},
		{name: "allow all", s: &specs.LinuxSeccomp{DefaultAction: allow}},
		{
			name: "full valid profile",
			s: &specs.LinuxSeccomp{
				DefaultAction:   specs.ActErrno,
				DefaultErrnoRet: uptr(38),
				Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
				Flags:           []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
				ListenerPath:    "/run/agent.sock",
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write"}, Action: allow},
					{Names: []string{"personality"}, Action: allow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
					{Names: []string{"mkdirat"}, Action: specs.ActNotify},
					{Names: []string{"getcwd"}, Action: specs.ActTrace, ErrnoRet: uptr(1)},
					{Names: []string{"clone"}, Action: allow, Args: []specs.LinuxSeccompArg{{Index: 5, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
				},
			},
		},
		{
			// runc skips names libseccomp does not know (newer kernels,
			// other architectures); engines' profiles depend on that.
			name: "unknown syscall name is not an error",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"fro", "mseal_from_the_future"}, Action: allow},
			}},
		},
		{
			name:     "missing default action",
			s:        &specs.LinuxSeccomp{Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: allow}}},
			wantErrs: []string{`linux.seccomp.defaultAction: is required`},
			sentinel: ErrUnknownAction,
		},
		{
			name:     "unknown default action",
			s:        &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"},
			wantErrs: []string{`linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`},
			sentinel: ErrUnknownAction,
		},
		{
			name:     "notify as default action",
			s:        &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/a"},
			wantErrs: []string{`linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action`},
			sentinel: ErrInvalid,
		},
		{
			name:     "unknown architecture",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_Z80"}},
			wantErrs: []string{`linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"`},
			sentinel: ErrUnknownArch,
		},
		{
			name:     "unknown flag",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			wantErrs: []string{`linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"`},
			sentinel: ErrUnknownFlag,
		},
		{
			name: "empty syscall name",
			s: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: specs.ActErrno},
				{Names: []string{"getcwd", ""}, Action: specs.ActErrno},
			}},
			wantErrs: []string{`linux.seccomp.syscalls[1].names[1]: invalid syscall name ""`},
			sentinel: ErrUnknownSyscall,
		},
		{
			name: "syscall name with a stray space",
			s: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ptrace "}, Action: specs.ActErrno},
			}},
			wantErrs: []string{`linux.seccomp.syscalls[0].names[0]: invalid syscall name "ptrace "`},
			sentinel: ErrUnknownSyscall,
		},
		{
			name:     "rule without names",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}},
			wantErrs: []string{`linux.seccomp.syscalls[0].names: must list at least one syscall`},
			sentinel: ErrInvalid,
		},
		{
			name:     "unknown rule action",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_DENY"}}},
			wantErrs: []string{`linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_DENY"`},
			sentinel: ErrUnknownAction,
		},
		{
			name: "unknown operator and index out of range",
			s: &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 1, Op: "SCMP_CMP_LIKE"},
				{Index: 6, Value: 1, Op: specs.OpEqualTo},
				{Index: 1, Value: 1},
			}}}},
			wantErrs: []string{
				`linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_LIKE"`,
				`linux.seccomp.syscalls[0].args[1].index: argument index 6 out of range`,
				`linux.seccomp.syscalls[0].args[2].op: is required`,
			},
			sentinel: ErrUnknownOperator,
		},
		{
			name:     "errnoRet with allow",
			s:        &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: allow, ErrnoRet: uptr(1)}}},
			wantErrs: []string{`linux.seccomp.syscalls[0].errnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not "SCMP_ACT_ALLOW"`},
			sentinel: ErrInvalid,
		},
		{
			name:     "defaultErrnoRet with kill",
			s:        &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, DefaultErrnoRet: uptr(1)},
			wantErrs: []string{`linux.seccomp.defaultErrnoRet: only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not "SCMP_ACT_KILL_PROCESS"`},
			sentinel: ErrInvalid,
		},
		{
			name:     "errnoRet beyond MAX_ERRNO",
			s:        &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(70000)},
			wantErrs: []string{`linux.seccomp.defaultErrnoRet: 70000 is out of range (0-4095)`},
			sentinel: ErrInvalid,
		},
		{
			name:     "notify without listenerPath",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}},
			wantErrs: []string{`linux.seccomp.listenerPath: is required when SCMP_ACT_NOTIFY is used`},
			sentinel: ErrInvalid,
		},
		{
			name:     "relative listenerPath",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, ListenerPath: "agent.sock", Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdirat"}, Action: specs.ActNotify}}},
			wantErrs: []string{`linux.seccomp.listenerPath: must be an absolute path, got "agent.sock"`},
			sentinel: ErrInvalid,
		},
		{
			name:     "metadata without listenerPath",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, ListenerMetadata: "x"},
			wantErrs: []string{`linux.seccomp.listenerMetadata: must not be set without listenerPath`},
			sentinel: ErrInvalid,
		},
		{
			name:     "notify on write",
			s:        &specs.LinuxSeccomp{DefaultAction: allow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActNotify}}},
			wantErrs: []string{`linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write syscall`},
			sentinel: ErrInvalid,
		},
		{
			name: "every problem is reported, not just the first",
			s: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO", Architectures: []specs.Arch{"nope"}, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"read"}, Action: allow},
				{Names: []string{"read"}, Action: allow},
				{Names: []string{"read"}, Action: allow},
				{Names: []string{""}, Action: "bad"},
			}},
			wantErrs: []string{
				`linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`,
				`linux.seccomp.architectures[0]: unknown architecture "nope"`,
				`linux.seccomp.syscalls[3].names[0]: invalid syscall name ""`,
				`linux.seccomp.syscalls[3].action: unknown action "bad"`,
			},
			sentinel: ErrUnknownAction,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.s)
			if len(tc.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("Validate: unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: want errors %q, got nil", tc.wantErrs)
			}
			for _, w := range tc.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			var fe *oci.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "linux.seccomp") {
				t.Errorf("error %v carries no *oci.FieldError with a linux.seccomp field", err)
			}
			// A caller prefixing the file name must be able to reach every
			// problem individually.
			n := 1
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(j.Unwrap())
				for _, e := range j.Unwrap() {
					if !errors.As(e, &fe) {
						t.Errorf("joined error %v is not a *oci.FieldError", e)
					}
				}
			}
			if n < len(tc.wantErrs) {
				t.Errorf("got %d problems, want at least %d: %v", n, len(tc.wantErrs), err)
			}
		})
	}
}

func TestWarningsAndKnownSyscall(t *testing.T) {
	tests := []struct {
		name  string
		known bool
	}{
		{"read", true},
		{"clone3", true},
		{"socketcall", true}, // not on x86_64, but libseccomp knows it for x86
		{"fro", false},
		{"", false},
		{"read ", false},
	}
	for _, tc := range tests {
		if got := KnownSyscall(tc.name); got != tc.known {
			t.Errorf("KnownSyscall(%q) = %v, want %v", tc.name, got, tc.known)
		}
	}

	s := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "fro"}, Action: specs.ActAllow},
		{Names: []string{"write"}, Action: specs.ActAllow},
		{Names: []string{"ioctl", "frobnicate"}, Action: specs.ActAllow},
	}}
	w := Warnings(s)
	want := []string{
		`linux.seccomp.syscalls[0].names[1]: unknown syscall "fro"`,
		`linux.seccomp.syscalls[2].names[1]: unknown syscall "frobnicate"`,
	}
	if len(w) != len(want) {
		t.Fatalf("Warnings = %v, want %d entries", w, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(w[i].Error(), want[i]) || !errors.Is(w[i], ErrUnknownSyscall) {
			t.Errorf("warning %d = %q, want prefix %q wrapping ErrUnknownSyscall", i, w[i], want[i])
		}
	}
}

func TestVersion(t *testing.T) {
	v := Version()
	if parts := strings.Split(v, "."); len(parts) != 3 || v == "0.0.0" {
		t.Fatalf("Version() = %q, want major.minor.micro of the linked libseccomp", v)
	}
	t.Logf("libseccomp %s", v)
}

func FuzzValidate(f *testing.F) {
	seeds := []string{
		`{}`,
		`{"defaultAction":"SCMP_ACT_ALLOW"}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"architectures":["SCMP_ARCH_X86_64"],"flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"rel","syscalls":[{"names":["write",""],"action":"SCMP_ACT_NOTIFY","errnoRet":99999,"args":[{"index":99,"op":"x"}]}]}`,
		`{"syscalls":[{}]}`,
		`{"syscalls":null,"architectures":[""],"flags":[""]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86","SCMP_ARCH_AARCH64"],"syscalls":[{"names":["socketcall","open","read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"}]},{"names":["clone3"],"action":"SCMP_ACT_KILL"}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},{"names":["read"],"action":"SCMP_ACT_KILL","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s specs.LinuxSeccomp
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		err := Validate(&s)
		// Whatever Validate accepts, every rule must be convertible; a
		// conversion failure would surface only inside the container's init.
		if err == nil && !disabled(&s) {
			if _, ok := actions[s.DefaultAction]; !ok {
				t.Fatalf("Validate accepted unknown default action %q", s.DefaultAction)
			}
			for _, sc := range s.Syscalls {
				for _, a := range sc.Args {
					if a.Index > 5 {
						t.Fatalf("Validate accepted argument index %d", a.Index)
					}
					if _, ok := operators[a.Op]; !ok {
						t.Fatalf("Validate accepted operator %q", a.Op)
					}
				}
			}
			// And libseccomp must accept what Validate accepted; only host
			// limits (ErrUnsupported) may still stop it.
			if f, _, _, err := build(&s); err != nil {
				if !errors.Is(err, ErrUnsupported) && !errors.Is(err, unix.EEXIST) {
					t.Fatalf("Validate accepted a profile build rejects: %v\n%s", err, data)
				}
			} else {
				f.Release()
			}
		}
		_ = Warnings(&s)
	})
}

// TestKnownLists checks the lists `features` publishes against Validate, so
// the two cannot disagree.
func TestKnownLists(t *testing.T) {
	tests := []struct {
		name string
		list []string
		min  int
		mk   func(string) *specs.LinuxSeccomp
	}{
		{"actions", KnownActions(), 9, func(v string) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.LinuxSeccompAction(v)}}}
		}},
		{"operators", KnownOperators(), 7, func(v string) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: specs.LinuxSeccompOperator(v)}}}}}
		}},
		{"archs", KnownArchs(), 23, func(v string) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.Arch(v)}}
		}},
		{"flags", KnownFlags(), 4, func(v string) *specs.LinuxSeccomp {
			return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(v)}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.list) < tc.min {
				t.Fatalf("%s = %v, want at least %d entries", tc.name, tc.list, tc.min)
			}
			for _, v := range tc.list {
				if err := Validate(tc.mk(v)); err != nil {
					t.Errorf("%s lists %q but Validate rejects it: %v", tc.name, v, err)
				}
			}
			if err := Validate(tc.mk("SCMP_BOGUS")); err == nil {
				t.Errorf("Validate accepted a bogus %s entry", tc.name)
			}
		})
	}
}
