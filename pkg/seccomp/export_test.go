package seccomp

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestExportBPFAndSimulate(t *testing.T) {
	deny := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES))},
	}}
	for _, tc := range []struct {
		name    string
		s       *specs.LinuxSeccomp
		call    string
		want    uint32
		wantErr string
	}{
		{"rule applies", deny, "getppid", unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES), ""},
		{"default applies", deny, "getpid", unix.SECCOMP_RET_ALLOW, ""},
		{"nil profile", nil, "getpid", 0, "nil profile"},
		{"no filter to export", &specs.LinuxSeccomp{}, "getpid", 0, "nothing to export"},
		{"invalid profile", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, "getpid", 0, "linux.seccomp.defaultAction"},
		{"unknown syscall", deny, "getpidd", 0, `"getpidd" is not known`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Simulate(tc.s, tc.call, [6]uint64{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if tc.call == "getpidd" && !errors.Is(err, ErrUnknownSyscall) {
					t.Errorf("err = %v, want ErrUnknownSyscall", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Simulate = %#x, want %#x", got, tc.want)
			}
		})
	}
}
