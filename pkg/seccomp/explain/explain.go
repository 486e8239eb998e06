// Package explain says what an OCI seccomp profile does to one syscall with
// given arguments, and why, by evaluating the profile's rules in Go with the
// semantics Bulwark's loader and libseccomp give them.
//
// The threat is a reviewer, or a policy, trusting the wrong reading of a
// profile. The JSON suggests "first matching entry wins", but what the
// kernel runs is libseccomp's merge of all entries: an unconditional rule
// for a syscall silently discards every conditional rule for it, whatever
// their actions; among conditional rules that all match, the most
// restrictive action wins regardless of order; a rule whose action equals
// the default is dropped unless rules with other actions exist for its
// syscall (then the loader keeps it, pkg/seccomp's stand-in); repeated
// argument indices are OR-ed. Explaining a
// call with those semantics shows a hole before it ships, and the tests
// (and `bulwark seccomp explain`) check every answer against the exported
// BPF program run by pkg/seccomp/bpfvm, so this reading cannot drift from
// libseccomp unnoticed.
package explain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Special values of Result.Rule.
const (
	RuleDefault = -1 // the profile's defaultAction
	RuleClone3  = -2 // Bulwark's clone3 -> ENOSYS compatibility rule (pkg/seccomp)
	RuleNone    = -3 // no filter at all
)

// Result is the decision for one call.
type Result struct {
	Syscall string
	Args    [6]uint64
	Action  specs.LinuxSeccompAction
	// Errno is the errno of an ERRNO action (or the data of TRACE).
	Errno uint
	// Rule is the index in Syscalls of the deciding entry, or one of the
	// Rule* constants.
	Rule int
	// Conds are the deciding rule's argument conditions (after libseccomp's
	// simplification); empty for an unconditional rule.
	Conds []specs.LinuxSeccompArg
	// Shadowed lists entries with argument conditions for this syscall that
	// libseccomp discarded because an unconditional rule exists for it.
	Shadowed []int
	// SameAsDefault lists entries for this syscall whose action equals the
	// default action and that the loader folds into the default, because
	// no rule for the syscall has another action.
	SameAsDefault []int
}

type cand struct {
	idx   int
	act   specs.LinuxSeccompAction
	errno uint
	conds []specs.LinuxSeccompArg
}

// normalize resolves the action the way pkg/seccomp does: a nil errnoRet
// means EPERM, SCMP_ACT_KILL means kill-thread.
func normalize(a specs.LinuxSeccompAction, ret *uint) (specs.LinuxSeccompAction, uint) {
	switch a {
	case specs.ActKill:
		return specs.ActKillThread, 0
	case specs.ActErrno, specs.ActTrace:
		if ret == nil {
			return a, uint(unix.EPERM)
		}
		return a, *ret
	}
	return a, 0
}

// precedence is the kernel's order when several filter results compete
// (Documentation/userspace-api/seccomp_filter.rst); libseccomp resolves
// overlapping rules of one syscall the same way.
func precedence(a specs.LinuxSeccompAction) int {
	switch a {
	case specs.ActKillProcess:
		return 8
	case specs.ActKillThread, specs.ActKill:
		return 7
	case specs.ActTrap:
		return 6
	case specs.ActErrno:
		return 5
	case specs.ActNotify:
		return 4
	case specs.ActTrace:
		return 3
	case specs.ActLog:
		return 2
	case specs.ActAllow:
		return 1
	}
	return 0
}

// trivial reports a condition libseccomp drops because it is always true.
func trivial(c specs.LinuxSeccompArg) bool {
	return c.Op == specs.OpMaskedEqual && c.Value == 0 && c.ValueTwo == 0
}

// Match reports whether argument value v satisfies c, with libseccomp's
// 64-bit semantics (for MASKED_EQ, Value is the mask and ValueTwo the datum).
func Match(c specs.LinuxSeccompArg, v uint64) bool {
	switch c.Op {
	case specs.OpEqualTo:
		return v == c.Value
	case specs.OpNotEqual:
		return v != c.Value
	case specs.OpLessThan:
		return v < c.Value
	case specs.OpLessEqual:
		return v <= c.Value
	case specs.OpGreaterThan:
		return v > c.Value
	case specs.OpGreaterEqual:
		return v >= c.Value
	case specs.OpMaskedEqual:
		return v&c.Value == c.ValueTwo
	}
	return false
}

// Cond renders a condition as "args[1] & 0xffffffff == 0x5412".
func Cond(c specs.LinuxSeccompArg) string {
	ops := map[specs.LinuxSeccompOperator]string{
		specs.OpEqualTo: "==", specs.OpNotEqual: "!=", specs.OpLessThan: "<", specs.OpLessEqual: "<=",
		specs.OpGreaterThan: ">", specs.OpGreaterEqual: ">=",
	}
	if c.Op == specs.OpMaskedEqual {
		return fmt.Sprintf("args[%d] & %#x == %#x", c.Index, c.Value, c.ValueTwo)
	}
	return fmt.Sprintf("args[%d] %s %#x", c.Index, ops[c.Op], c.Value)
}

// Evaluate decides syscall name with args under s. s must have passed
// seccomp.Validate; name must be a syscall libseccomp knows (unknown names
// in s are skipped by the loader, so they never decide anything there, but
// Evaluate cannot know which those are).
func Evaluate(s *specs.LinuxSeccomp, name string, args [6]uint64) Result {
	r := Result{Syscall: name, Args: args}
	if s == nil || (s.DefaultAction == "" && len(s.Syscalls) == 0) {
		r.Action, r.Rule = specs.ActAllow, RuleNone
		return r
	}
	defAct, defErrno := normalize(s.DefaultAction, s.DefaultErrnoRet)

	// A rule equal to the default matters only beside rules for the same
	// syscall with other actions; alone, the loader skips it.
	decides := false
	for _, sc := range s.Syscalls {
		if act, errno := normalize(sc.Action, sc.ErrnoRet); slices.Contains(sc.Names, name) && (act != defAct || errno != defErrno) {
			decides = true
		}
	}
	var uncond []cand
	var conds []cand
	mentionsClone3 := false
	for i, sc := range s.Syscalls {
		if slices.Contains(sc.Names, "clone3") {
			mentionsClone3 = true
		}
		if !slices.Contains(sc.Names, name) {
			continue
		}
		act, errno := normalize(sc.Action, sc.ErrnoRet)
		if act == defAct && errno == defErrno && !decides {
			// Redundant: it still says why the default applies.
			r.SameAsDefault = append(r.SameAsDefault, i)
			continue
		}
		var cs []specs.LinuxSeccompArg
		for _, a := range sc.Args {
			if !trivial(a) {
				cs = append(cs, a)
			}
		}
		repeated := false
		seen := map[uint]bool{}
		for _, a := range cs {
			repeated = repeated || seen[a.Index]
			seen[a.Index] = true
		}
		switch {
		case len(cs) == 0:
			uncond = append(uncond, cand{i, act, errno, nil})
		case repeated:
			for _, a := range cs {
				conds = append(conds, cand{i, act, errno, []specs.LinuxSeccompArg{a}})
			}
		default:
			conds = append(conds, cand{i, act, errno, cs})
		}
	}

	decide := func(c cand) Result {
		r.Action, r.Errno, r.Rule, r.Conds = c.act, c.errno, c.idx, c.conds
		return r
	}
	if len(uncond) > 0 {
		for _, c := range conds {
			if !slices.Contains(r.Shadowed, c.idx) {
				r.Shadowed = append(r.Shadowed, c.idx)
			}
		}
		return decide(uncond[0])
	}
	var best *cand
	for i := range conds {
		c := &conds[i]
		ok := true
		for _, a := range c.conds {
			if a.Index > 5 || !Match(a, args[a.Index]) {
				ok = false
				break
			}
		}
		if ok && (best == nil || precedence(c.act) > precedence(best.act)) {
			best = c
		}
	}
	if best != nil {
		return decide(*best)
	}
	if name == "clone3" && !mentionsClone3 && clone3Patched(s.DefaultAction, defErrno) {
		r.Action, r.Errno, r.Rule = specs.ActErrno, uint(unix.ENOSYS), RuleClone3
		return r
	}
	r.Action, r.Errno, r.Rule = defAct, defErrno, RuleDefault
	if defAct != specs.ActErrno && defAct != specs.ActTrace {
		r.Errno = 0
	}
	return r
}

// clone3Patched mirrors pkg/seccomp's clone3Enosys: deny-by-default profiles
// that never mention clone3 get it as ENOSYS so libc falls back to clone.
func clone3Patched(def specs.LinuxSeccompAction, errno uint) bool {
	switch def {
	case specs.ActErrno:
		return errno != uint(unix.ENOSYS)
	case specs.ActKill, specs.ActKillThread, specs.ActKillProcess, specs.ActTrap:
		return true
	}
	return false
}

// Kernel returns the SECCOMP_RET_* value the filter returns for this
// decision, to compare with a BPF run.
func (r Result) Kernel() uint32 {
	switch r.Action {
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | uint32(r.Errno)&unix.SECCOMP_RET_DATA
	case specs.ActNotify:
		return unix.SECCOMP_RET_USER_NOTIF
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | uint32(r.Errno)&unix.SECCOMP_RET_DATA
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG
	}
	return unix.SECCOMP_RET_ALLOW
}

// Outcome says in words what the calling program sees.
func (r Result) Outcome() string {
	switch r.Action {
	case specs.ActAllow:
		return "allowed"
	case specs.ActLog:
		return "allowed and logged"
	case specs.ActErrno:
		name := unix.ErrnoName(unix.Errno(r.Errno))
		if name == "" {
			name = fmt.Sprintf("errno %d", r.Errno)
		}
		if r.Errno == uint(unix.ENOSYS) {
			return "fails with ENOSYS (as if the kernel did not have it)"
		}
		return "denied with " + name
	case specs.ActKillProcess:
		return "kills the whole process (SIGSYS)"
	case specs.ActKill, specs.ActKillThread:
		return "kills the calling thread (SIGSYS)"
	case specs.ActTrap:
		return "raises SIGSYS in the caller"
	case specs.ActNotify:
		return "is handed to the seccomp agent"
	case specs.ActTrace:
		return fmt.Sprintf("is handed to a ptrace tracer (data %d), ENOSYS without one", r.Errno)
	}
	return string(r.Action)
}

// Why says which part of the profile decided. reasons, when not nil, holds
// a human reason per Syscalls entry (profiles.Reasons).
func (r Result) Why(reasons []string) string {
	var b strings.Builder
	switch r.Rule {
	case RuleNone:
		return "no seccomp filter"
	case RuleDefault:
		b.WriteString("by the default action: no rule matches")
		for _, i := range r.SameAsDefault {
			fmt.Fprintf(&b, "; rule #%d says the same", i)
			if i < len(reasons) && reasons[i] != "" {
				fmt.Fprintf(&b, " (%s)", reasons[i])
			}
		}
	case RuleClone3:
		b.WriteString("by Bulwark's clone3 rule: its flags are in memory where seccomp cannot check them, and ENOSYS makes libc fall back to clone, which the profile does filter")
	default:
		fmt.Fprintf(&b, "by rule #%d", r.Rule)
		if len(r.Conds) > 0 {
			cs := make([]string, len(r.Conds))
			for i, c := range r.Conds {
				cs[i] = Cond(c)
			}
			b.WriteString(": " + strings.Join(cs, " && "))
		}
		if r.Rule < len(reasons) && reasons[r.Rule] != "" {
			fmt.Fprintf(&b, " (%s)", reasons[r.Rule])
		}
	}
	if len(r.Shadowed) > 0 {
		fmt.Fprintf(&b, "; rules %v for %s have argument conditions but are ignored, because libseccomp drops them when an unconditional rule exists", r.Shadowed, r.Syscall)
	}
	return b.String()
}
