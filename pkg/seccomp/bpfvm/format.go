package bpfvm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// fieldNames label the words of seccomp_data a program loads, so a listing
// reads "ld [nr]" and "ld [args[1].lo]" instead of bare offsets.
var fieldNames = map[uint32]string{0: "nr", 4: "arch", 8: "ip.lo", 12: "ip.hi"}

func init() {
	for i := uint32(0); i < 6; i++ {
		fieldNames[16+8*i] = fmt.Sprintf("args[%d].lo", i)
		fieldNames[20+8*i] = fmt.Sprintf("args[%d].hi", i)
	}
}

var aluNames = map[uint16]string{
	unix.BPF_ADD: "add", unix.BPF_SUB: "sub", unix.BPF_MUL: "mul", unix.BPF_DIV: "div", unix.BPF_MOD: "mod",
	unix.BPF_AND: "and", unix.BPF_OR: "or", unix.BPF_XOR: "xor", unix.BPF_LSH: "lsh", unix.BPF_RSH: "rsh", unix.BPF_NEG: "neg",
}

var jmpNames = map[uint16]string{unix.BPF_JEQ: "jeq", unix.BPF_JGT: "jgt", unix.BPF_JGE: "jge", unix.BPF_JSET: "jset"}

// Format renders one instruction in the style of the kernel's bpf_dbg, with
// seccomp_data offsets named. Jump targets are relative, as in the program.
func Format(in unix.SockFilter) string {
	src := func() string {
		if in.Code&srcX != 0 {
			return "x"
		}
		return fmt.Sprintf("#%#x", in.K)
	}
	switch in.Code & 0x07 {
	case clsLD, clsLDX:
		op := "ld"
		if in.Code&0x07 == clsLDX {
			op = "ldx"
		}
		switch in.Code & 0xe0 {
		case modeABS:
			if n, ok := fieldNames[in.K]; ok {
				return fmt.Sprintf("%s [%s]", op, n)
			}
			return fmt.Sprintf("%s [%d]", op, in.K)
		case modeIMM:
			return fmt.Sprintf("%s #%#x", op, in.K)
		case modeMEM:
			return fmt.Sprintf("%s M[%d]", op, in.K)
		case modeLEN:
			return op + " #len"
		}
	case clsST:
		return fmt.Sprintf("st M[%d]", in.K)
	case clsSTX:
		return fmt.Sprintf("stx M[%d]", in.K)
	case clsALU:
		if n, ok := aluNames[in.Code&0xf0]; ok {
			if in.Code&0xf0 == unix.BPF_NEG {
				return n
			}
			return n + " " + src()
		}
	case clsJMP:
		if in.Code&0xf0 == unix.BPF_JA {
			return fmt.Sprintf("ja +%d", in.K)
		}
		if n, ok := jmpNames[in.Code&0xf0]; ok {
			return fmt.Sprintf("%s %s, +%d, +%d", n, src(), in.Jt, in.Jf)
		}
	case clsRET:
		if in.Code&0x18 == 0x10 {
			return "ret a"
		}
		return "ret " + Verdict(in.K)
	case clsMISC:
		switch in.Code & 0xf8 {
		case 0x00:
			return "tax"
		case 0x80:
			return "txa"
		}
	}
	return fmt.Sprintf("unknown code=%#04x jt=%d jf=%d k=%#x", in.Code, in.Jt, in.Jf, in.K)
}

// Disassemble lists prog one instruction per line, each prefixed by its
// index so relative jumps can be followed by eye.
func Disassemble(prog []unix.SockFilter) []string {
	out := make([]string, len(prog))
	for i, in := range prog {
		out[i] = fmt.Sprintf("%4d: %s", i, Format(in))
	}
	return out
}

// Verdict names a SECCOMP_RET_* value the way OCI profiles spell actions,
// with the errno or trace data where there is one: "SCMP_ACT_ERRNO(EPERM)".
func Verdict(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "SCMP_ACT_KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "SCMP_ACT_KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "SCMP_ACT_TRAP"
	case unix.SECCOMP_RET_ERRNO:
		if name := unix.ErrnoName(unix.Errno(data)); name != "" {
			return fmt.Sprintf("SCMP_ACT_ERRNO(%s)", name)
		}
		return fmt.Sprintf("SCMP_ACT_ERRNO(%d)", data)
	case unix.SECCOMP_RET_USER_NOTIF:
		return "SCMP_ACT_NOTIFY"
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("SCMP_ACT_TRACE(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "SCMP_ACT_LOG"
	case unix.SECCOMP_RET_ALLOW:
		return "SCMP_ACT_ALLOW"
	}
	return fmt.Sprintf("unknown verdict %#x", v)
}
