package profiles

import (
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// modeArgs are the syscalls that give a file its mode bits, each with the
// argument that holds the mode.
var modeArgs = []struct {
	name string
	arg  uint
}{
	{"chmod", 1}, {"fchmod", 1}, {"fchmodat", 2}, {"fchmodat2", 2},
	{"creat", 1}, {"open", 2}, {"openat", 3},
	{"mknod", 1}, {"mknodat", 2},
}

// SetIDWhy is the reason a person is shown for a refused set-id bit.
const SetIDWhy = "a set-user-id or set-group-id file made here lands on the host's disk as its owner's (host root's for a writable rootfs), for any local user to run; inside, no_new_privs makes the bits inert anyway"

// WithoutSetIDFiles changes sc so that no process can give a file a
// set-user-id or set-group-id bit (EPERM): the chmod family, and open,
// creat and mknod with such a mode. openat2, whose mode sits in memory
// where seccomp cannot read it, gets ENOSYS, so that libc falls back to
// openat. It is for a container that writes through an idmapped mount onto
// a host directory: the idmap stores what the container's root makes as
// owned by the directory's owner (host root for a rootfs), and the host path
// must be reachable by the container's unprivileged root, so by others too.
//
// Only names sc allows unconditionally are changed; a name sc does not
// allow stays refused. A name sc allows under conditions of its own is an
// error: the two sets of conditions cannot be merged safely. Calling it
// again on its own result changes nothing. A nil sc (unconfined) is left
// alone.
func WithoutSetIDFiles(sc *specs.LinuxSeccomp) error {
	if sc == nil {
		return nil
	}
	const setID = unix.S_ISUID | unix.S_ISGID
	names := make([]string, 0, len(modeArgs)+1)
	for _, m := range modeArgs {
		names = append(names, m.name)
	}
	names = append(names, "openat2")
	moved := map[string]bool{}
	for _, n := range names {
		plain, conditional := allowedBy(sc, n)
		switch {
		case plain >= 0:
			sc.Syscalls[plain].Names = slices.DeleteFunc(slices.Clone(sc.Syscalls[plain].Names), func(x string) bool { return x == n })
			moved[n] = true
		case conditional && !isSetIDRule(sc, n):
			return fmt.Errorf("linux.seccomp: %s is allowed under the profile's own conditions, to which the refusal of set-id bits cannot be added", n)
		}
	}
	sc.Syscalls = slices.DeleteFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool { return len(r.Names) == 0 })
	for _, m := range modeArgs {
		if !moved[m.name] {
			continue
		}
		sc.Syscalls = append(sc.Syscalls,
			specs.LinuxSyscall{Names: []string{m.name}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{masked(m.arg, setID, 0)}},
			specs.LinuxSyscall{Names: []string{m.name}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EPERM), Args: []specs.LinuxSeccompArg{masked(m.arg, unix.S_ISUID, unix.S_ISUID)}},
			specs.LinuxSyscall{Names: []string{m.name}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.EPERM), Args: []specs.LinuxSeccompArg{masked(m.arg, unix.S_ISGID, unix.S_ISGID)}},
		)
	}
	if moved["openat2"] {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"openat2"}, Action: specs.ActErrno, ErrnoRet: errnoRet(unix.ENOSYS)})
	}
	return nil
}

// allowedBy finds name among sc's allow rules: the index of a rule that
// allows it whatever its arguments (-1 if none), and whether one allows it
// under conditions.
func allowedBy(sc *specs.LinuxSeccomp, name string) (plain int, conditional bool) {
	plain = -1
	for i, r := range sc.Syscalls {
		if r.Action != specs.ActAllow || !slices.Contains(r.Names, name) {
			continue
		}
		if len(r.Args) == 0 {
			plain = i
		} else {
			conditional = true
		}
	}
	return plain, conditional
}

// isSetIDRule: name's conditional allow is WithoutSetIDFiles' own.
func isSetIDRule(sc *specs.LinuxSeccomp, name string) bool {
	for _, r := range sc.Syscalls {
		if r.Action == specs.ActAllow && slices.Equal(r.Names, []string{name}) && len(r.Args) == 1 &&
			r.Args[0].Op == specs.OpMaskedEqual && r.Args[0].Value == unix.S_ISUID|unix.S_ISGID && r.Args[0].ValueTwo == 0 {
			return true
		}
	}
	return false
}
