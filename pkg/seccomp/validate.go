package seccomp

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

const (
	fieldRoot = "linux.seccomp"

	// maxErrnoRet is the kernel's MAX_ERRNO. Larger SECCOMP_RET_DATA values
	// are clamped by the kernel for ERRNO, and libseccomp takes the value as
	// an int16, so anything bigger would silently become a different number.
	maxErrnoRet = 4095

	// flagTsync is listed by the runtime-spec but has no specs-go constant.
	flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"
)

var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	// libseccomp's SCMP_ACT_KILL has always meant "kill the thread";
	// runc keeps that meaning, and so do we.
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// archs maps the spec's SCMP_ARCH_* names to libseccomp-golang's names.
var archs = map[specs.Arch]string{
	specs.ArchX86:         "x86",
	specs.ArchX86_64:      "amd64",
	specs.ArchX32:         "x32",
	specs.ArchARM:         "arm",
	specs.ArchAARCH64:     "arm64",
	specs.ArchMIPS:        "mips",
	specs.ArchMIPS64:      "mips64",
	specs.ArchMIPS64N32:   "mips64n32",
	specs.ArchMIPSEL:      "mipsel",
	specs.ArchMIPSEL64:    "mipsel64",
	specs.ArchMIPSEL64N32: "mipsel64n32",
	specs.ArchPPC:         "ppc",
	specs.ArchPPC64:       "ppc64",
	specs.ArchPPC64LE:     "ppc64le",
	specs.ArchS390:        "s390",
	specs.ArchS390X:       "s390x",
	specs.ArchPARISC:      "parisc",
	specs.ArchPARISC64:    "parisc64",
	specs.ArchRISCV64:     "riscv64",
	specs.ArchLOONGARCH64: "loong64",
	specs.ArchM68K:        "m68k",
	specs.ArchSH:          "sh",
	specs.ArchSHEB:        "sheb",
}

var flags = []specs.LinuxSeccompFlag{
	flagTsync,
	specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

// KnownFlags lists the filter flags Bulwark understands, for `features`.
// SupportedFlags says which of them this host can actually apply.
func KnownFlags() []string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = string(f)
	}
	return out
}

// KnownActions, KnownOperators and KnownArchs list what Validate accepts,
// sorted, for the `features` command.
func KnownActions() []string   { return sortedKeys(actions) }
func KnownOperators() []string { return sortedKeys(operators) }
func KnownArchs() []string     { return sortedKeys(archs) }

func sortedKeys[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

// disabled reports a profile that runc treats as "no seccomp at all": no
// default action and no rules. The spec calls defaultAction REQUIRED, but
// engines have emitted `"seccomp": {}` for unconfined containers and runc
// runs them unfiltered; refusing them would break those setups, and there is
// no rule in them we could enforce anyway.
func disabled(s *specs.LinuxSeccomp) bool {
	return s.DefaultAction == "" && len(s.Syscalls) == 0
}

// Validate checks a seccomp profile without touching the kernel and returns
// every problem found. A single problem is returned as a *oci.FieldError; several
// are joined with errors.Join, each still a *oci.FieldError (walk them with
// `interface{ Unwrap() []error }` to prefix a file name to each).
//
// Syscall names that libseccomp does not know are NOT errors. runc skips
// them (profiles such as Docker's list syscalls of newer kernels and other
// architectures, and libseccomp lags the kernel), and engines rely on that;
// Load skips them too and Warnings reports them. A name that cannot be a
// syscall at all (empty, or with characters outside [A-Za-z0-9_] such as a
// stray space or comma) IS an error here, unlike runc: it is always a typo,
// and skipping it would silently delete the rule the author meant to write.
//
// Validate checks names, not host support: a flag or architecture this
// libseccomp or kernel cannot enforce is reported by Load (and SupportedFlags).
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil || disabled(s) {
		return nil
	}
	var errs []error
	add := func(field string, sentinel error, format string, args ...any) {
		errs = append(errs, &oci.FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel})
	}

	f := fieldRoot + ".defaultAction"
	if s.DefaultAction == "" {
		add(f, ErrUnknownAction, "is required (one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, ...)")
	} else if _, ok := actions[s.DefaultAction]; !ok {
		add(f, ErrUnknownAction, "unknown action %q", s.DefaultAction)
	} else if s.DefaultAction == specs.ActNotify {
		// Every syscall of the runtime between load and execve (including the
		// one that hands the notify fd over) would wait for an agent that has
		// not got the fd yet: a guaranteed hang. runc refuses it too.
		add(f, ErrInvalid, "SCMP_ACT_NOTIFY cannot be the default action; notify specific syscalls instead")
	}
	if s.DefaultErrnoRet != nil {
		checkErrnoRet(add, fieldRoot+".defaultErrnoRet", s.DefaultAction, *s.DefaultErrnoRet)
	}

	for i, a := range s.Architectures {
		if _, ok := archs[a]; !ok {
			add(fmt.Sprintf("%s.architectures[%d]", fieldRoot, i), ErrUnknownArch, "unknown architecture %q", a)
		}
	}
	for i, fl := range s.Flags {
		if !knownFlag(fl) {
			add(fmt.Sprintf("%s.flags[%d]", fieldRoot, i), ErrUnknownFlag, "unknown flag %q (known: %v)", fl, KnownFlags())
		}
	}

	usesNotify := false
	for i, sc := range s.Syscalls {
		base := fmt.Sprintf("%s.syscalls[%d]", fieldRoot, i)
		if len(sc.Names) == 0 {
			add(base+".names", ErrInvalid, "must list at least one syscall")
		}
		for j, n := range sc.Names {
			if !wellFormedName(n) {
				add(fmt.Sprintf("%s.names[%d]", base, j), ErrUnknownSyscall, "invalid syscall name %q", n)
			}
		}
		if sc.Action == "" {
			add(base+".action", ErrUnknownAction, "is required")
		} else if _, ok := actions[sc.Action]; !ok {
			add(base+".action", ErrUnknownAction, "unknown action %q", sc.Action)
		}
		if sc.Action == specs.ActNotify {
			usesNotify = true
			for j, n := range sc.Names {
				// After Load the runtime still has to write the notify fd's
				// number to its parent; notifying write would deadlock on an
				// agent that is waiting for exactly that fd (runc refuses it
				// for the same reason).
				if n == "write" {
					add(fmt.Sprintf("%s.names[%d]", base, j), ErrInvalid, "SCMP_ACT_NOTIFY cannot be used for the write syscall: the runtime needs it to hand the notify fd to the agent")
				}
			}
		}
		if sc.ErrnoRet != nil {
			checkErrnoRet(add, base+".errnoRet", sc.Action, *sc.ErrnoRet)
		}
		for k, a := range sc.Args {
			af := fmt.Sprintf("%s.args[%d]", base, k)
			if a.Index > 5 {
				add(af+".index", ErrInvalid, "argument index %d out of range: syscalls have 6 arguments (0-5)", a.Index)
			}
			if a.Op == "" {
				add(af+".op", ErrUnknownOperator, "is required")
			} else if _, ok := operators[a.Op]; !ok {
				add(af+".op", ErrUnknownOperator, "unknown operator %q", a.Op)
			}
		}
	}

	if usesNotify {
		if s.ListenerPath == "" {
			add(fieldRoot+".listenerPath", ErrInvalid, "is required when SCMP_ACT_NOTIFY is used: the notify fd has to be sent to a seccomp agent")
		}
	}
	if s.ListenerPath != "" && !filepath.IsAbs(s.ListenerPath) {
		add(fieldRoot+".listenerPath", ErrInvalid, "must be an absolute path, got %q", s.ListenerPath)
	}
	if s.ListenerMetadata != "" && s.ListenerPath == "" {
		add(fieldRoot+".listenerMetadata", ErrInvalid, "must not be set without listenerPath")
	}

	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errors.Join(errs...)
}

func checkErrnoRet(add func(string, error, string, ...any), field string, act specs.LinuxSeccompAction, v uint) {
	if act != specs.ActErrno && act != specs.ActTrace {
		add(field, ErrInvalid, "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %q", act)
		return
	}
	if v > maxErrnoRet {
		add(field, ErrInvalid, "%d is out of range (0-%d)", v, maxErrnoRet)
	}
}

func knownFlag(f specs.LinuxSeccompFlag) bool {
	for _, k := range flags {
		if f == k {
			return true
		}
	}
	return false
}

func wellFormedName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// KnownSyscall reports whether the linked libseccomp can resolve name, on
// any architecture it knows (not only the native one).
func KnownSyscall(name string) bool {
	if !wellFormedName(name) {
		return false
	}
	_, err := libseccomp.GetSyscallFromName(name)
	return err == nil
}

// Warnings reports what Load will silently skip: syscall names the linked
// libseccomp does not know. They are not errors (see Validate) but a user
// should see them, because a rule that names only unknown syscalls does
// nothing. Each entry is a *oci.FieldError wrapping ErrUnknownSyscall.
func Warnings(s *specs.LinuxSeccomp) []error {
	if s == nil {
		return nil
	}
	var out []error
	for i, sc := range s.Syscalls {
		for j, n := range sc.Names {
			if wellFormedName(n) && !KnownSyscall(n) {
				out = append(out, &oci.FieldError{
					Field: fmt.Sprintf("%s.syscalls[%d].names[%d]", fieldRoot, i, j),
					Msg:   fmt.Sprintf("unknown syscall %q: not known to libseccomp %s, rule ignored", n, Version()),
					Err:   ErrUnknownSyscall,
				})
			}
		}
	}
	return out
}

// Version returns the version of the libseccomp Bulwark is linked against.
func Version() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}
