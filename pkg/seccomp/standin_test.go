package seccomp

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Rules whose action equals the default action: libseccomp refuses them,
// and skipping them is right only where nothing else decides the syscall.
// Each case runs the exported program (pkg/seccomp/bpfvm) over real calls.
func TestDefaultActionRulesKeepTheirMeaning(t *testing.T) {
	eperm := uptr(uint(unix.EPERM))
	tiocsti := specs.LinuxSeccompArg{Index: 1, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: unix.TIOCSTI}
	always := specs.LinuxSeccompArg{Index: 1, Op: specs.OpGreaterEqual, Value: 0}
	retEPERM := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retEACCES := unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)
	type call struct {
		name string
		arg1 uint64
		want uint32
	}
	for _, tc := range []struct {
		name  string
		s     *specs.LinuxSeccomp
		calls []call
	}{
		{
			// The floor's TIOCSTI denial under Docker's defaultAction:
			// libseccomp tests the equality before ">= 0", so the denial
			// must survive as a rule for the EPERM to win.
			name: "EPERM denial beside an always-true allow, EPERM default",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: eperm, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: eperm, Args: []specs.LinuxSeccompArg{tiocsti}},
				{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{always}},
			}},
			calls: []call{
				{"ioctl", unix.TIOCSTI, retEPERM},
				{"ioctl", 0xffffffff00000000 | unix.TIOCSTI, retEPERM},
				{"ioctl", unix.TCGETS, unix.SECCOMP_RET_ALLOW},
				{"read", 0, retEPERM},
			},
		},
		{
			name: "order of the rules does not matter",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{always}},
				{Names: []string{"ioctl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{tiocsti}},
			}},
			calls: []call{
				{"ioctl", unix.TIOCSTI, retEPERM},
				{"ioctl", unix.TCGETS, unix.SECCOMP_RET_ALLOW},
			},
		},
		{
			// An unconditional default-action rule shadows the
			// conditional allow of its syscall in libseccomp; dropping it
			// would have let the allow through.
			name: "unconditional default-action rule before a conditional allow",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActKillProcess},
				{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}}},
				{Names: []string{"getpid"}, Action: specs.ActAllow},
			}},
			calls: []call{
				{"personality", 0, unix.SECCOMP_RET_KILL_PROCESS},
				{"getpid", 0, unix.SECCOMP_RET_ALLOW},
			},
		},
		{
			// An allow-by-default profile refusing one argument value
			// and allowing (its default) a more specific one.
			name: "ALLOW default: specific allow beside a broader denial",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: unix.AF_UNIX}}},
				{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpLessThan, Value: 64}}},
			}},
			calls: []call{
				{"socket", 0, retEACCES}, // arg1 is 0 here; args[0] set below
			},
		},
		{
			name: "alone for its syscall, a default-action rule is redundant and skipped",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getppid"}, Action: specs.ActErrno},
				{Names: []string{"getpid"}, Action: specs.ActAllow},
			}},
			calls: []call{
				{"getppid", 0, retEPERM},
				{"getpid", 0, unix.SECCOMP_RET_ALLOW},
			},
		},
		{
			// The stand-in errno must not collide with one the profile uses.
			name: "profile using errno 4094 itself",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: uptr(4094), Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 7}}},
				{Names: []string{"ioctl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{tiocsti}},
				{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{always}},
			}},
			calls: []call{
				{"ioctl", 7, unix.SECCOMP_RET_ERRNO | 4094},
				{"ioctl", unix.TIOCSTI, retEPERM},
				{"ioctl", unix.TCGETS, unix.SECCOMP_RET_ALLOW},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tc.calls {
				args := [6]uint64{0, c.arg1}
				if c.name == "socket" {
					args = [6]uint64{unix.AF_INET}
				}
				got, err := Simulate(tc.s, c.name, args)
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("%s(args[1]=%#x) = %#x, want %#x", c.name, c.arg1, got, c.want)
				}
			}
			if tc.name == "ALLOW default: specific allow beside a broader denial" {
				got, err := Simulate(tc.s, "socket", [6]uint64{unix.AF_UNIX})
				if err != nil {
					t.Fatal(err)
				}
				if got != unix.SECCOMP_RET_ALLOW {
					t.Errorf("socket(AF_UNIX) = %#x, want ALLOW", got)
				}
			}
			// No return of the stand-in survives in the program.
			raw, err := ExportBPF(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			for off := 0; off+8 <= len(raw); off += 8 {
				code := uint16(raw[off]) | uint16(raw[off+1])<<8
				k := uint32(raw[off+4]) | uint32(raw[off+5])<<8 | uint32(raw[off+6])<<16 | uint32(raw[off+7])<<24
				if code == unix.BPF_RET|unix.BPF_K && k&unix.SECCOMP_RET_ACTION_FULL == unix.SECCOMP_RET_ERRNO && k&unix.SECCOMP_RET_DATA > 4000 && k != unix.SECCOMP_RET_ERRNO|4094 {
					t.Errorf("instruction %d returns the stand-in %#x", off/8, k)
				}
			}
		})
	}
}
