package seccomp

import (
	"encoding/binary"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// libseccomp refuses a rule whose action equals the filter's default
// action (seccomp_rule_add returns EACCES), and runc skips such rules. That
// is right only while the rule is redundant: when the same syscall also has
// rules with other actions, a default-action rule can be the one that
// decides. Two examples the hardening floor produces: under Docker's
// defaultAction (EPERM) an "ioctl EPERM if args[1] is TIOCSTI" rule next
// to "ioctl ALLOW if args[1] >= 0", where libseccomp tests the equality
// first and the denial must win; and an unconditional default-action rule,
// which shadows every conditional rule of its syscall. Skipping either
// turns a denial into an allow.
//
// Such a rule is therefore added with a stand-in action, an ERRNO value
// that nothing else in the profile uses, so libseccomp builds exactly the
// decision tree it would for a rule with an action of its own. The exported
// program's return instructions carrying the stand-in are then rewritten to
// the default action (patchStandIn): the kernel sees the profile's meaning,
// and libseccomp's ordering of the rules is unchanged.

// standIn is the stand-in action of one filter and the kernel value of the
// default action it stands for.
type standIn struct {
	act libseccomp.ScmpAction
	ret uint32 // SECCOMP_RET_ERRNO | the stand-in errno
	def uint32 // the default action's SECCOMP_RET_* value
}

// needsRule reports, per syscall name, whether a rule with the default
// action must be kept because another rule for the same syscall has a
// different action. Rules whose action is invalid are left for build to
// report.
func needsRule(s *specs.LinuxSeccomp, defAct libseccomp.ScmpAction, api uint) map[string]bool {
	other := map[string]bool{}
	for _, sc := range s.Syscalls {
		act, err := action("", sc.Action, sc.ErrnoRet, api)
		if err != nil || act == defAct {
			continue
		}
		for _, n := range sc.Names {
			other[n] = true
		}
	}
	return other
}

// maxErrno is the kernel's MAX_ERRNO; libseccomp accepts errno values
// below it.
const maxErrno = 4095

// newStandIn picks the largest errno no ERRNO action of s (nor the clone3
// and ENOSYS-stub rules) uses: the value itself never reaches a program.
func newStandIn(s *specs.LinuxSeccomp, defAct libseccomp.ScmpAction) (*standIn, error) {
	used := map[uint]bool{uint(unix.ENOSYS): true, uint(unix.EPERM): true}
	note := func(a specs.LinuxSeccompAction, ret *uint) {
		if a == specs.ActErrno && ret != nil {
			used[*ret] = true
		}
	}
	note(s.DefaultAction, s.DefaultErrnoRet)
	for _, sc := range s.Syscalls {
		note(sc.Action, sc.ErrnoRet)
	}
	def, ok := kernelAction(defAct)
	if !ok {
		return nil, fmt.Errorf("seccomp: default action %s has no kernel value", s.DefaultAction)
	}
	for e := uint(maxErrno - 1); e > 0; e-- {
		if !used[e] {
			return &standIn{act: libseccomp.ActErrno.SetReturnCode(int16(e)), ret: unix.SECCOMP_RET_ERRNO | uint32(e), def: def}, nil
		}
	}
	return nil, fmt.Errorf("seccomp: the profile uses every errno value, none is left to encode its default-action rules")
}

// kernelAction is the SECCOMP_RET_* value libseccomp emits for a.
func kernelAction(a libseccomp.ScmpAction) (uint32, bool) {
	data := uint32(a>>16) & unix.SECCOMP_RET_DATA
	switch a & 0xffff {
	case libseccomp.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, true
	case libseccomp.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, true
	case libseccomp.ActTrap:
		return unix.SECCOMP_RET_TRAP, true
	case libseccomp.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, true
	case libseccomp.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, true
	case libseccomp.ActLog:
		return unix.SECCOMP_RET_LOG, true
	case libseccomp.ActAllow:
		return unix.SECCOMP_RET_ALLOW, true
	case libseccomp.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF, true
	}
	return 0, false
}

// patchStandIn rewrites, in libseccomp's program prog (native byte order),
// every "ret #stand-in" to "ret #default". Only return instructions are
// touched: a comparison constant that happens to equal the value is data.
func patchStandIn(prog []byte, si *standIn) ([]byte, error) {
	const insn = 8 // struct sock_filter
	if len(prog)%insn != 0 {
		return nil, fmt.Errorf("seccomp: libseccomp's program is %d bytes, not whole instructions", len(prog))
	}
	out := append([]byte(nil), prog...)
	for off := 0; off < len(out); off += insn {
		code := binary.NativeEndian.Uint16(out[off:])
		k := binary.NativeEndian.Uint32(out[off+4:])
		if code == unix.BPF_RET|unix.BPF_K && k == si.ret {
			binary.NativeEndian.PutUint32(out[off+4:], si.def)
		}
	}
	return out, nil
}
