package seccomp

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Recording returns the filter a learning run installs instead of base:
// every rule that lets a call through (allow or log) notifies instead, so a
// listener sees exactly the calls base would have let through, with their
// arguments, and answers each with SECCOMP_USER_NOTIF_FLAG_CONTINUE. What
// base refuses stays refused with the same errno: a profile learned under
// it can only be narrower. A base that lets everything through by default
// (nil, or a default of allow or log) gets one notify rule naming every
// native syscall it does not mention.
//
// The result is not valid as a container's linux.seccomp (Validate refuses
// notify on write and notify without a listenerPath, because a runtime that
// loads the filter early and hands the fd over would deadlock); it is meant
// for RecordingProgram, loaded last before execve while the runtime takes
// the fd with pidfd_getfd.
func Recording(base *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	rec := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	if base != nil && !disabled(base) {
		rec.DefaultAction = base.DefaultAction
		rec.DefaultErrnoRet = base.DefaultErrnoRet
		rec.Architectures = slices.Clone(base.Architectures)
		for _, f := range base.Flags {
			// The learning filter is per thread (no TSYNC: the runtime's
			// other threads die at execve) and logs nothing itself.
			if f == specs.LinuxSeccompFlagSpecAllow {
				rec.Flags = append(rec.Flags, f)
			}
		}
		for _, sc := range base.Syscalls {
			sc.Names = slices.Clone(sc.Names)
			sc.Args = slices.Clone(sc.Args)
			if letsThrough(sc.Action) {
				sc.Action, sc.ErrnoRet = specs.ActNotify, nil
			}
			rec.Syscalls = append(rec.Syscalls, sc)
		}
	}
	if letsThrough(rec.DefaultAction) {
		rec.DefaultAction, rec.DefaultErrnoRet = specs.ActAllow, nil
		mentioned := map[string]bool{}
		for _, sc := range rec.Syscalls {
			for _, n := range sc.Names {
				mentioned[n] = true
			}
		}
		var rest []string
		for _, n := range NativeSyscalls() {
			if !mentioned[n] {
				rest = append(rest, n)
			}
		}
		rec.Syscalls = append(rec.Syscalls, specs.LinuxSyscall{Names: rest, Action: specs.ActNotify})
	}
	return rec
}

func letsThrough(a specs.LinuxSeccompAction) bool {
	return a == specs.ActAllow || a == specs.ActLog
}

// RecordingProgram validates base and compiles Recording(base). Install
// the program with InstallProgram(prog, rec), which returns the listener.
func RecordingProgram(base *specs.LinuxSeccomp) (prog []byte, rec *specs.LinuxSeccomp, err error) {
	if base != nil {
		if err := Validate(base); err != nil {
			return nil, nil, err
		}
	}
	rec = Recording(base)
	prog, err = exportBuilt(rec)
	if err != nil {
		return nil, nil, fmt.Errorf("compiling the learning filter: %w", err)
	}
	return prog, rec, nil
}

// NativeSyscalls lists every syscall name the linked libseccomp knows for
// the native architecture, in number order.
func NativeSyscalls() []string {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil
	}
	var out []string
	for nr := 0; nr < 1024; nr++ {
		if n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch); err == nil && n != "" {
			out = append(out, n)
		}
	}
	return out
}

// SyscallName names native syscall nr (from seccomp_data.nr) for arch, the
// AUDIT_ARCH_* value the kernel put in seccomp_data.arch; "" if unknown.
func SyscallName(nr int32, auditArch uint32) string {
	arch, err := libseccomp.GetNativeArch()
	if err != nil {
		return ""
	}
	if auditArch == 0xc000003e && nr&0x40000000 != 0 { // x32 on x86_64
		arch = libseccomp.ArchX32
	}
	n, err := libseccomp.ScmpSyscall(nr).GetNameByArch(arch)
	if err != nil {
		return ""
	}
	return n
}
