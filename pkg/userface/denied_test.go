package userface

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestDeniedByNamesTheRulesThatGiveTheLoggedAction(t *testing.T) {
	errno := func(e unix.Errno) *uint { v := uint(e); return &v }
	sc := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno, DefaultErrnoRet: errno(unix.ENOSYS),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mount"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EPERM)},
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EAFNOSUPPORT), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 17, Op: specs.OpEqualTo}}},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}},
			{Names: []string{"read"}, Action: specs.ActAllow},
			{Names: []string{"ptrace"}, Action: specs.ActKillProcess},
		},
	}
	reasons := []string{"mounting is refused", "packet sockets", "unix sockets", "reading", "tracing kills"}
	const errnoAct, kill = unix.SECCOMP_RET_ERRNO, unix.SECCOMP_RET_KILL_PROCESS
	for _, tc := range []struct {
		name    string
		code    uint32
		how, by string
		notInBy string
	}{
		{"mount", errnoAct, "refused with EPERM", "by rule #0: mounting is refused", ""},
		{"mkdir", errnoAct, "refused with ENOSYS", "by the default action: no rule allows mkdir", "rule #"},
		{"socket", errnoAct, "refused with EAFNOSUPPORT or ENOSYS", "by the default action (no rule for its arguments) or rule #1 args[0] == 0x11; the kernel's record has no arguments: `bulwark seccomp explain p.json socket ARGS...` tells which", "#2"},
		{"ptrace", kill, "killed the process (SIGSYS)", "by rule #4: tracing kills", ""},
		{"read", kill, "killed the process (SIGSYS)", "by no rule of this profile", ""},
	} {
		how, by := deniedBy(sc, reasons, "p.json", tc.name, tc.code)
		if how != tc.how || !strings.HasPrefix(by, tc.by) || tc.notInBy != "" && strings.Contains(by, tc.notInBy) {
			t.Errorf("%s: %q, %q; want %q, %q (without %q)", tc.name, how, by, tc.how, tc.by, tc.notInBy)
		}
	}
}
