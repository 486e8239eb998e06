package seccomp

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// TestBuildAttributes checks the filter attributes that cannot be observed
// from a probe syscall: they are read back from the real libseccomp filter.
func TestBuildAttributes(t *testing.T) {
	api, _ := libseccomp.GetAPI()
	tests := []struct {
		name        string
		s           *specs.LinuxSeccomp
		wantLog     bool
		wantSSB     bool
		wantArchs   []libseccomp.ScmpArch
		wantDefault libseccomp.ScmpAction
		// wantOptimize is the libseccomp optimisation level; 0 means the
		// library default (1, linear).
		wantOptimize int
	}{
		{
			name:        "plain allow",
			s:           &specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
			wantDefault: libseccomp.ActAllow,
		},
		{
			name:        "errno with defaultErrnoRet, flags and extra archs",
			s:           &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38), Architectures: []specs.Arch{specs.ArchX86, specs.ArchX32}, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}},
			wantLog:     true,
			wantSSB:     true,
			wantArchs:   []libseccomp.ScmpArch{libseccomp.ArchX86, libseccomp.ArchX32},
			wantDefault: libseccomp.ActErrno.SetReturnCode(38),
		},
		{
			name:        "SCMP_ACT_KILL means kill thread, as in libseccomp and runc",
			s:           &specs.LinuxSeccomp{DefaultAction: specs.ActKill},
			wantDefault: libseccomp.ActKillThread,
		},
		{
			name:        "errno without errnoRet is EPERM",
			s:           &specs.LinuxSeccomp{DefaultAction: specs.ActErrno},
			wantDefault: libseccomp.ActErrno.SetReturnCode(1),
		},
		{
			name:         "large profile gets the binary tree",
			s:            &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{allowAllBut(t)}},
			wantDefault:  libseccomp.ActErrno.SetReturnCode(1),
			wantOptimize: 2,
		},
		{
			name: "many entries that are all skipped stay linear",
			s: func() *specs.LinuxSeccomp {
				s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
				for _, n := range allowAllBut(t).Names[:40] {
					s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: specs.ActAllow})
				}
				return s
			}(),
			wantDefault: libseccomp.ActAllow,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, _, err := build(tc.s)
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			defer f.Release()
			if nnp, err := f.GetNoNewPrivsBit(); err != nil || nnp {
				t.Errorf("no_new_privs attribute = %v, %v; want false: the caller owns NNP", nnp, err)
			}
			wantBad := libseccomp.ActKillProcess
			if api < apiLogKillPro {
				wantBad = libseccomp.ActKillThread
			}
			if bad, err := f.GetBadArchAction(); err != nil || bad != wantBad {
				t.Errorf("bad-arch action = %v, %v; want %v", bad, err, wantBad)
			}
			if def, err := f.GetDefaultAction(); err != nil || def != tc.wantDefault {
				t.Errorf("default action = %#x, %v; want %#x", uint(def), err, uint(tc.wantDefault))
			}
			if l, err := f.GetLogBit(); err != nil || l != tc.wantLog {
				t.Errorf("log bit = %v, %v; want %v", l, err, tc.wantLog)
			}
			if ssb, err := f.GetSSB(); err != nil || ssb != tc.wantSSB {
				t.Errorf("spec-allow bit = %v, %v; want %v", ssb, err, tc.wantSSB)
			}
			if api >= apiRawRC {
				want := tc.wantOptimize
				if want == 0 {
					want = 1
				}
				if o, err := f.GetOptimize(); err != nil || o != want {
					t.Errorf("optimize level = %d, %v; want %d", o, err, want)
				}
			}
			for _, a := range tc.wantArchs {
				if ok, err := f.IsArchPresent(a); err != nil || !ok {
					t.Errorf("arch %v present = %v, %v; want true", a, ok, err)
				}
			}
		})
	}
}

func TestSupportedFlags(t *testing.T) {
	got := map[string]bool{}
	for _, f := range SupportedFlags() {
		got[f] = true
	}
	api, _ := libseccomp.GetAPI()
	want := map[string]bool{
		"SECCOMP_FILTER_FLAG_TSYNC":                    api >= apiTsync,
		string(specs.LinuxSeccompFlagLog):              api >= apiLogKillPro,
		string(specs.LinuxSeccompFlagSpecAllow):        api >= apiSpecAllow,
		string(specs.LinuxSeccompFlagWaitKillableRecv): api >= 7,
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("SupportedFlags()[%s] = %v, want %v at API level %d", f, got[f], w, api)
		}
	}
	if len(KnownFlags()) != len(want) {
		t.Errorf("KnownFlags() = %v, want %d flags", KnownFlags(), len(want))
	}
}
