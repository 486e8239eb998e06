package seccomp

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// A profile is written against the syscalls its author knew. A syscall
// added to the kernel since then falls to the default action, and when
// that is EPERM or a kill, libc cannot tell "forbidden" from "not there":
// glibc falls back to an older syscall only on ENOSYS (clone3 -> clone,
// faccessat2 -> faccessat, close_range -> a close loop, ...), so the
// program breaks instead. enosysStub therefore answers ENOSYS for every
// syscall whose number is above the largest one the profile names, per
// architecture, before the profile's own filter runs, as runc does. Numbers
// at or below that largest one keep the profile's verdict.
//
// The stub is skipped where the default action already lets such calls
// through (allow, log, trace: a tracer handles ENOSYS itself) or already
// answers ENOSYS.

// auditArches maps the libseccomp architectures the stub knows to the
// AUDIT_ARCH_* value the kernel reports in seccomp_data.arch. x32 shares
// x86_64's value and is told apart by bit 30 of the syscall number.
var auditArches = map[libseccomp.ScmpArch]uint32{
	libseccomp.ArchAMD64: unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX32:   unix.AUDIT_ARCH_X86_64,
	libseccomp.ArchX86:   unix.AUDIT_ARCH_I386,
	libseccomp.ArchARM64: unix.AUDIT_ARCH_AARCH64,
	libseccomp.ArchARM:   unix.AUDIT_ARCH_ARM,
}

const x32SyscallBit = 0x40000000

func needsEnosysStub(s *specs.LinuxSeccomp) bool {
	switch s.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
		return false
	case specs.ActErrno:
		return s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != uint(unix.ENOSYS)
	}
	return true
}

// lastSyscalls returns, per libseccomp architecture the stub knows (the
// profile's and the native one), the largest syscall number any rule names.
// Architectures without a known name are left out.
func lastSyscalls(s *specs.LinuxSeccomp) (map[libseccomp.ScmpArch]uint32, error) {
	set := map[libseccomp.ScmpArch]bool{}
	for _, a := range s.Architectures {
		arch, err := libseccomp.GetArchFromString(archs[a])
		if err == nil {
			set[arch] = true
		}
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	set[native] = true
	last := map[libseccomp.ScmpArch]uint32{}
	for arch := range set {
		if _, ok := auditArches[arch]; !ok {
			continue
		}
		var max uint32
		for _, sc := range s.Syscalls {
			for _, name := range sc.Names {
				nr, err := libseccomp.GetSyscallFromNameByArch(name, arch)
				if err == nil && nr >= 0 && uint32(nr) > max {
					max = uint32(nr)
				}
			}
		}
		if max > 0 {
			last[arch] = max
		}
	}
	return last, nil
}

// Jump targets of the stub's instructions, resolved once it is laid out.
const (
	lblNext   = ""
	lblEnosys = "enosys"
	lblFilter = "filter"
)

type stubInsn struct {
	code     uint16
	k        uint32
	jt, jf   string // conditional jumps; ja uses jt
	label    string // this instruction's own label
	jumpCond bool
}

// enosysStub returns the program prog (libseccomp's, native byte order)
// with the ENOSYS stub in front, or prog unchanged when s needs none.
func enosysStub(s *specs.LinuxSeccomp, prog []byte) ([]byte, error) {
	if !needsEnosysStub(s) {
		return prog, nil
	}
	last, err := lastSyscalls(s)
	if err != nil || len(last) == 0 {
		return prog, err
	}
	ld := func(off uint32, label string) stubInsn {
		return stubInsn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off, label: label}
	}
	jmp := func(op uint16, k uint32, jt, jf string) stubInsn {
		return stubInsn{code: unix.BPF_JMP | op | unix.BPF_K, k: k, jt: jt, jf: jf, jumpCond: true}
	}
	ja := func(to string) stubInsn { return stubInsn{code: unix.BPF_JMP | unix.BPF_JA, jt: to} }
	// above sends numbers above max to ENOSYS and the rest to the filter.
	above := func(max uint32, ok bool) stubInsn {
		if !ok {
			return ja(lblFilter)
		}
		return jmp(unix.BPF_JGT, max, lblEnosys, lblFilter)
	}

	code := []stubInsn{ld(4, "")} // seccomp_data.arch
	var sections []stubInsn
	for _, audit := range []uint32{unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_ARM} {
		sec := fmt.Sprintf("arch-%#x", audit)
		switch audit {
		case unix.AUDIT_ARCH_X86_64:
			a64, ok64 := last[libseccomp.ArchAMD64]
			x32, okx32 := last[libseccomp.ArchX32]
			if !ok64 && !okx32 {
				continue
			}
			sections = append(sections,
				ld(0, sec), // seccomp_data.nr
				jmp(unix.BPF_JSET, x32SyscallBit, sec+"-x32", lblNext),
				above(a64, ok64),
			)
			x := above(x32, okx32)
			x.label = sec + "-x32"
			sections = append(sections, x)
		default:
			var max uint32
			var ok bool
			for arch, a := range auditArches {
				if a == audit {
					max, ok = last[arch]
				}
			}
			if !ok {
				continue
			}
			sections = append(sections, ld(0, sec), above(max, true))
		}
		code = append(code, jmp(unix.BPF_JEQ, audit, sec, lblNext))
	}
	code = append(code, ja(lblFilter))
	code = append(code, sections...)
	code = append(code, stubInsn{code: unix.BPF_RET | unix.BPF_K, k: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), label: lblEnosys})

	at := map[string]int{lblFilter: len(code)}
	for i, in := range code {
		if in.label != "" {
			at[in.label] = i
		}
	}
	rel := func(i int, to string) (uint32, error) {
		if to == lblNext {
			return 0, nil
		}
		t, ok := at[to]
		if !ok || t <= i {
			return 0, fmt.Errorf("seccomp: ENOSYS stub: bad jump to %q", to)
		}
		return uint32(t - i - 1), nil
	}
	var out bytes.Buffer
	for i, in := range code {
		f := unix.SockFilter{Code: in.code, K: in.k}
		if in.jumpCond {
			jt, err := rel(i, in.jt)
			if err != nil {
				return nil, err
			}
			jf, err := rel(i, in.jf)
			if err != nil {
				return nil, err
			}
			if jt > 255 || jf > 255 {
				return nil, fmt.Errorf("seccomp: ENOSYS stub: jump too long")
			}
			f.Jt, f.Jf = uint8(jt), uint8(jf)
		} else if in.code == unix.BPF_JMP|unix.BPF_JA {
			k, err := rel(i, in.jt)
			if err != nil {
				return nil, err
			}
			f.K = k
		}
		if err := binary.Write(&out, binary.NativeEndian, f); err != nil {
			return nil, err
		}
	}
	if (out.Len()+len(prog))/int(binary.Size(unix.SockFilter{})) > unix.BPF_MAXINSNS {
		// Too long to load with the stub; the profile's own verdicts still
		// hold without it.
		return prog, nil
	}
	out.Write(prog)
	return out.Bytes(), nil
}
