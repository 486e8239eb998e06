// Package rlimit applies process.rlimits with prlimit(2) in two steps, so
// that the payload gets exactly the config's limits and the runtime's own
// init is never bound by them:
//
//   - Raise, early and from where it is allowed: every hard limit the config
//     asks to be higher than the process's is raised to it, and nothing is
//     lowered. The runtime does it on a create's init from outside (inside a
//     user namespace the init could not raise a hard limit above the
//     runtime's own); an exec'd process does it on itself while it still has
//     its privileges.
//   - Prepare and Apply, just before execve: the exact values, which after
//     Raise only lower limits and so need no privilege. Apply makes raw
//     system calls and no allocation: nothing of the Go runtime runs under
//     limits meant for the payload.
//
// Threat: a limit silently left unset lets the payload exhaust what the
// config meant to bound (open files, processes, locked memory); a limit
// applied too early binds the init instead (an address-space limit smaller
// than the Go runtime's reservations crashed it while it was starting, and
// a limit a hook or the runtime changes afterwards never reaches the
// payload). Every failure names the rlimit's index and type.
package rlimit

import (
	"fmt"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Raise raises pid's (0: the caller's) hard limits to those of rls that are
// higher, keeping each soft limit, and lowers nothing.
func Raise(pid int, rls []specs.POSIXRlimit) error {
	for i, rl := range rls {
		res, err := resource(i, rl)
		if err != nil {
			return err
		}
		var cur unix.Rlimit
		if err := unix.Prlimit(pid, res, nil, &cur); err != nil {
			return fieldError(i, rl, "prlimit", err)
		}
		if rl.Hard <= cur.Max {
			continue
		}
		lim := unix.Rlimit{Cur: cur.Cur, Max: rl.Hard}
		if err := unix.Prlimit(pid, res, &lim, nil); err != nil {
			return fieldError(i, rl, "raising the hard limit: prlimit", err)
		}
	}
	return nil
}

// Set applies rls to pid (0: the caller) exactly, in one step.
func Set(pid int, rls []specs.POSIXRlimit) error {
	for i, rl := range rls {
		res, err := resource(i, rl)
		if err != nil {
			return err
		}
		lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := unix.Prlimit(pid, res, &lim, nil); err != nil {
			return fieldError(i, rl, "prlimit", err)
		}
	}
	return nil
}

// Limits are rlimits worked out for Apply.
type Limits struct {
	rls  []specs.POSIXRlimit
	idx  []int // in process.rlimits, or -1 for an extra
	res  []uintptr
	lims []unix.Rlimit
}

// Prepare checks rls and works them out for Apply. extra limits are
// applied too when rls does not name their resource (the init's
// RLIMIT_NOFILE as it started, which its Go runtime raised).
func Prepare(rls []specs.POSIXRlimit, extra ...specs.POSIXRlimit) (*Limits, error) {
	l := &Limits{}
	named := map[int]bool{}
	for i, rl := range rls {
		res, err := resource(i, rl)
		if err != nil {
			return nil, err
		}
		named[res] = true
		l.add(i, rl, res)
	}
	for _, rl := range extra {
		res, ok := oci.RlimitResource(rl.Type)
		if !ok {
			return nil, fmt.Errorf("rlimit: unknown type %q", rl.Type)
		}
		if !named[res] {
			l.add(-1, rl, res)
		}
	}
	return l, nil
}

func (l *Limits) add(i int, rl specs.POSIXRlimit, res int) {
	l.rls = append(l.rls, rl)
	l.idx = append(l.idx, i)
	l.res = append(l.res, uintptr(res))
	l.lims = append(l.lims, unix.Rlimit{Cur: rl.Soft, Max: rl.Hard})
}

// Apply sets the calling process's limits to l's. Its system calls are raw
// and it allocates nothing until it fails, so it is safe right before
// execve even with an address-space or process limit the Go runtime could
// not live with. A nil l does nothing.
func (l *Limits) Apply() error {
	if l == nil {
		return nil
	}
	for i := range l.res {
		_, _, e := unix.RawSyscall6(unix.SYS_PRLIMIT64, 0, l.res[i], uintptr(unsafe.Pointer(&l.lims[i])), 0, 0, 0)
		if e == 0 {
			continue
		}
		if l.idx[i] < 0 {
			return fmt.Errorf("restoring %s to %d/%d: prlimit: %w", l.rls[i].Type, l.rls[i].Soft, l.rls[i].Hard, e)
		}
		return fieldError(l.idx[i], l.rls[i], "prlimit", e)
	}
	return nil
}

func resource(i int, rl specs.POSIXRlimit) (int, error) {
	res, ok := oci.RlimitResource(rl.Type)
	if !ok {
		return 0, &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("process.rlimits[%d].type", i), Msg: fmt.Sprintf("unknown rlimit %q", rl.Type), Err: oci.ErrInvalidConfig}
	}
	return res, nil
}

func fieldError(i int, rl specs.POSIXRlimit, what string, err error) error {
	return &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("process.rlimits[%d]", i), Msg: fmt.Sprintf("%s %s: %v", what, rl.Type, err), Err: err}
}
