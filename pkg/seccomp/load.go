package seccomp

import (
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Minimum libseccomp API levels (seccomp_api_get(3)); the level already
// folds in what the running kernel supports.
const (
	apiTsync      = 2 // SECCOMP_FILTER_FLAG_TSYNC
	apiLogKillPro = 3 // SCMP_ACT_LOG, SCMP_ACT_KILL_PROCESS, FLAG_LOG
	apiSpecAllow  = 4 // FLAG_SPEC_ALLOW
	apiRawRC      = 4 // SCMP_FLTATR_API_SYSRAWRC
	apiNotify     = 6 // SCMP_ACT_NOTIFY
)

// optimizeThreshold is where a binary-tree filter starts to beat libseccomp's
// linear one (runc picks the same number). It counts rules actually added:
// libseccomp <= 2.5.4 misbehaves with the tree and no rules, which a profile
// of 33 entries that are all skipped would otherwise produce.
const optimizeThreshold = 32

// Load builds the filter described by s and installs it on every thread of
// the calling process (TSYNC). It returns the user-notification fd when a rule
// uses SCMP_ACT_NOTIFY, else -1. The fd is close-on-exec; the caller sends it
// to the agent (SendToListener) before execve.
//
// Load never sets no_new_privs: the caller decides, and without it the kernel
// still accepts the filter while the calling thread has CAP_SYS_ADMIN. A
// profile with neither defaultAction nor syscalls loads nothing (runc
// compatibility, see disabled).
//
// Unlike runc, Load adds no SECCOMP_FILTER_FLAG_SPEC_ALLOW when the profile
// has no flags: runc does it for speed, but where the kernel ties the
// speculative-store-bypass mitigation to seccomp (Linux < 5.16, or
// spec_store_bypass_disable=seccomp) that switches the mitigation off for the
// container; a profile that wants the trade-off can ask for it.
//
// The kernel checks no_new_privs / CAP_SYS_ADMIN on the calling OS thread
// only, so a Go caller that changes either per thread must call Load from
// that thread (runtime.LockOSThread).
//
// Load is meant to run in the container's init right before execve; it is
// not reversible.
func Load(s *specs.LinuxSeccomp) (notifyFd int, err error) {
	if s == nil {
		return -1, errors.New("seccomp: Load called with a nil profile")
	}
	if err := Validate(s); err != nil {
		return -1, err
	}
	if disabled(s) {
		return -1, nil
	}
	filter, usesNotify, si, err := build(s)
	if err != nil {
		return -1, err
	}
	defer filter.Release()
	if si != nil {
		// libseccomp would load its program with the stand-in action
		// unpatched; install the patched one, on every thread as Load
		// promises.
		prog, err := exportFilter(filter, s, si)
		if err != nil {
			return -1, err
		}
		tsync := *s
		if !slices.Contains(tsync.Flags, flagTsync) {
			tsync.Flags = append(slices.Clone(tsync.Flags), flagTsync)
		}
		return InstallProgram(prog, &tsync)
	}

	if err := filter.Load(); err != nil {
		if errors.Is(err, unix.EACCES) {
			return -1, fmt.Errorf("loading seccomp filter: the kernel requires no_new_privs or CAP_SYS_ADMIN in the calling thread (set process.noNewPrivileges, or load seccomp before dropping CAP_SYS_ADMIN): %w", err)
		}
		if errors.Is(err, unix.ESRCH) {
			// TSYNC can only adopt threads whose filter stack is an
			// ancestor of ours.
			return -1, fmt.Errorf("loading seccomp filter: another thread of this process already has a different seccomp filter, so it cannot be synchronised (TSYNC): %w", err)
		}
		return -1, fmt.Errorf("loading seccomp filter (libseccomp %s): %w", Version(), err)
	}
	if !usesNotify {
		return -1, nil
	}
	fd, err := filter.GetNotifFd()
	if err != nil {
		return -1, fmt.Errorf("seccomp filter loaded but its notify fd is unavailable: %w", err)
	}
	return int(fd), nil
}

// build turns a validated profile into a libseccomp filter. The caller owns
// (and must Release) the filter. A non-nil standIn means the filter's
// program must be exported and patched (patchStandIn) before it is
// installed: libseccomp's own Load would install the stand-in action.
func build(s *specs.LinuxSeccomp) (_ *libseccomp.ScmpFilter, usesNotify bool, si *standIn, err error) {
	api, _ := libseccomp.GetAPI() // an error means API level 0: every check below then fails clearly

	defAct, err := action(fieldRoot+".defaultAction", s.DefaultAction, s.DefaultErrnoRet, api)
	if err != nil {
		return nil, false, nil, err
	}
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, false, nil, fmt.Errorf("creating seccomp filter with default action %s: %w", s.DefaultAction, err)
	}
	defer func() {
		if err != nil {
			filter.Release()
		}
	}()

	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, false, nil, fmt.Errorf("clearing libseccomp's no_new_privs attribute: %w", err)
	}
	// Without RawRC libseccomp reports every load failure as ECANCELED, which
	// hides the EACCES that tells the user no_new_privs is missing.
	if api >= apiRawRC {
		if err := filter.SetRawRC(true); err != nil {
			return nil, false, nil, fmt.Errorf("setting libseccomp raw return codes: %w", err)
		}
	}
	// A syscall from an ABI the profile does not list (say int 0x80 on
	// x86_64 without SCMP_ARCH_X86) is an attempt to go around the filter.
	// libseccomp's default kills only the thread, which can leave a
	// multi-threaded process running half-dead holding locks; kill it whole.
	badArch := libseccomp.ActKillThread
	if api >= apiLogKillPro {
		badArch = libseccomp.ActKillProcess
	}
	if err := filter.SetBadArchAction(badArch); err != nil {
		return nil, false, nil, fmt.Errorf("setting seccomp bad-architecture action: %w", err)
	}

	for i, a := range s.Architectures {
		field := fmt.Sprintf("%s.architectures[%d]", fieldRoot, i)
		arch, err := libseccomp.GetArchFromString(archs[a])
		if err != nil {
			return nil, false, nil, &oci.FieldError{Field: field, Msg: fmt.Sprintf("architecture %s is not supported by libseccomp %s", a, Version()), Err: errors.Join(ErrUnsupported, err)}
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, false, nil, &oci.FieldError{Field: field, Msg: fmt.Sprintf("adding architecture %s (libseccomp %s)", a, Version()), Err: errors.Join(ErrUnsupported, err)}
		}
	}

	for i, fl := range s.Flags {
		if err := setFlag(filter, fl, api); err != nil {
			return nil, false, nil, &oci.FieldError{Field: fmt.Sprintf("%s.flags[%d]", fieldRoot, i), Msg: err.Error(), Err: errors.Join(ErrUnsupported, err)}
		}
	}

	mentionsClone3 := false
	rules := 0
	needed := needsRule(s, defAct, api)
	for i, sc := range s.Syscalls {
		base := fmt.Sprintf("%s.syscalls[%d]", fieldRoot, i)
		act, err := action(base+".action", sc.Action, sc.ErrnoRet, api)
		if err != nil {
			return nil, false, nil, err
		}
		for j, name := range sc.Names {
			if name == "clone3" {
				mentionsClone3 = true
			}
			nr, err := libseccomp.GetSyscallFromName(name)
			if err != nil {
				continue // unknown to libseccomp: see Validate for why this is not an error
			}
			ruleAct := act
			if act == defAct {
				// libseccomp refuses a rule whose action equals the
				// default. Alone for its syscall, such a rule changes
				// nothing and is skipped (as runc does); beside rules
				// with other actions it may decide, so it goes in under
				// the stand-in action (standin.go).
				if !needed[name] {
					continue
				}
				if si == nil {
					if si, err = newStandIn(s, defAct); err != nil {
						return nil, false, nil, err
					}
				}
				ruleAct = si.act
			}
			if act == libseccomp.ActNotify {
				usesNotify = true
			}
			if err := addRule(filter, nr, ruleAct, sc.Args); err != nil {
				msg := fmt.Sprintf("adding rule for %s: %v", name, err)
				if errors.Is(err, unix.EEXIST) {
					// libseccomp cannot pick between two actions for the
					// very same syscall and arguments; runc fails here too.
					msg = fmt.Sprintf("rule for %s conflicts with an earlier rule for the same syscall and arguments with a different action", name)
					err = errors.Join(ErrInvalid, err)
				}
				return nil, false, nil, &oci.FieldError{Field: fmt.Sprintf("%s.names[%d]", base, j), Msg: msg, Err: err}
			}
			rules++
		}
	}
	// The attribute is read when the BPF is generated, so it can be set
	// after the rules, when we know how many were really added.
	if rules > optimizeThreshold {
		// Only a speed-up; an old libseccomp without it still enforces the same rules.
		_ = filter.SetOptimize(2)
	}

	if err := clone3Enosys(filter, s, defAct, mentionsClone3); err != nil {
		return nil, false, nil, err
	}
	return filter, usesNotify, si, nil
}

// action converts a spec action, checking that this libseccomp and kernel
// can enforce it so the user gets a clear error instead of EINVAL from load.
func action(field string, a specs.LinuxSeccompAction, errnoRet *uint, api uint) (libseccomp.ScmpAction, error) {
	act, ok := actions[a]
	if !ok {
		return libseccomp.ActInvalid, &oci.FieldError{Field: field, Msg: fmt.Sprintf("unknown action %q", a), Err: ErrUnknownAction}
	}
	need := uint(0)
	switch act {
	case libseccomp.ActLog, libseccomp.ActKillProcess:
		need = apiLogKillPro
	case libseccomp.ActNotify:
		need = apiNotify
	case libseccomp.ActErrno, libseccomp.ActTrace:
		ret := uint(unix.EPERM)
		if errnoRet != nil {
			ret = *errnoRet
		}
		act = act.SetReturnCode(int16(ret))
	}
	if api < need {
		return libseccomp.ActInvalid, &oci.FieldError{Field: field, Msg: fmt.Sprintf("%s needs libseccomp API level %d, this host has %d (libseccomp %s; notify needs libseccomp >= 2.5 and Linux >= 5.7, log/kill-process Linux >= 4.14)", a, need, api, Version()), Err: ErrUnsupported}
	}
	return act, nil
}

func setFlag(filter *libseccomp.ScmpFilter, f specs.LinuxSeccompFlag, api uint) error {
	var err error
	switch f {
	case flagTsync:
		// libseccomp-golang turns TSYNC on for every filter it creates; all
		// that can go wrong is a kernel without it, where the filter would
		// quietly cover only the calling thread.
		if api < apiTsync {
			return fmt.Errorf("%s needs Linux >= 3.17 and libseccomp API level %d, this host has %d", f, apiTsync, api)
		}
		return nil
	case specs.LinuxSeccompFlagLog:
		err = filter.SetLogBit(true)
	case specs.LinuxSeccompFlagSpecAllow:
		err = filter.SetSSB(true)
	case specs.LinuxSeccompFlagWaitKillableRecv:
		// runc's words around libseccomp's reason, which scripts (runc's
		// own suite among them) match to tell an old libseccomp apart.
		if err = filter.SetWaitKill(true); err != nil {
			err = fmt.Errorf("error adding WaitKill flag to seccomp filter: %w", err)
		}
	default:
		return fmt.Errorf("unknown flag %q: %w", f, ErrUnknownFlag)
	}
	if err != nil {
		return fmt.Errorf("%s is not supported by libseccomp %s on this kernel: %w", f, Version(), err)
	}
	return nil
}

// SupportedFlags lists the flags of KnownFlags that this libseccomp and
// kernel can apply, for `features`. It asks libseccomp, not a table, so it
// cannot drift from what Load will accept.
func SupportedFlags() []string {
	api, _ := libseccomp.GetAPI()
	filter, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil
	}
	defer filter.Release()
	var out []string
	for _, f := range flags {
		if setFlag(filter, f, api) == nil {
			out = append(out, string(f))
		}
	}
	return out
}

// addRule adds one syscall's rule. Conditions on distinct arguments are
// AND-ed in one libseccomp rule. When an argument index repeats, libseccomp
// cannot AND two comparisons on the same argument, and runc (which engines'
// profiles are written against) then adds every condition as its own rule,
// i.e. OR-s them all; we keep exactly that meaning.
func addRule(filter *libseccomp.ScmpFilter, nr libseccomp.ScmpSyscall, act libseccomp.ScmpAction, args []specs.LinuxSeccompArg) error {
	if len(args) == 0 {
		return filter.AddRule(nr, act)
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	var seen [6]bool
	repeated := false
	for _, a := range args {
		c, err := libseccomp.MakeCondition(a.Index, operators[a.Op], a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("argument %d %s: %w", a.Index, a.Op, err)
		}
		if seen[a.Index] {
			repeated = true
		}
		seen[a.Index] = true
		conds = append(conds, c)
	}
	if !repeated {
		return filter.AddRuleConditional(nr, act, conds)
	}
	for _, c := range conds {
		if err := filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

// clone3Enosys makes clone3 fail with ENOSYS under a deny-by-default profile
// that does not mention it. glibc >= 2.34 (and other libcs) try clone3 first
// and fall back to clone only on ENOSYS; with EPERM or a kill, every
// pthread_create and posix_spawn in the container fails, yet the profile's
// author, who wrote it before clone3 existed, clearly meant to allow threads
// through clone's rules. The exported program (ExportBPF) also answers
// ENOSYS for every syscall newer than the profile (enosysStub); this rule
// still covers a profile that names newer syscalls than clone3 but not
// clone3 itself, and Load, which installs libseccomp's program unpatched.
// A profile that names clone3 in any rule has said what it wants and is
// left alone.
func clone3Enosys(filter *libseccomp.ScmpFilter, s *specs.LinuxSeccomp, defAct libseccomp.ScmpAction, mentioned bool) error {
	if mentioned {
		return nil
	}
	switch s.DefaultAction {
	case specs.ActErrno:
		if s.DefaultErrnoRet != nil && *s.DefaultErrnoRet == uint(unix.ENOSYS) {
			return nil
		}
	case specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
	default:
		// ALLOW and LOG already let clone3 through; TRACE hands it to a
		// tracer (which without one returns ENOSYS anyway).
		return nil
	}
	nr, err := libseccomp.GetSyscallFromName("clone3")
	if err != nil {
		return nil // libseccomp predates clone3: nothing to patch
	}
	enosys := libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS))
	if enosys == defAct {
		return nil
	}
	if err := filter.AddRule(nr, enosys); err != nil {
		return fmt.Errorf("adding clone3 -> ENOSYS rule so libc can fall back to clone: %w", err)
	}
	return nil
}
