package seccomp

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exec is an execve(2) with its arguments allocated beforehand (Run may
// not allocate), so that a caller can do its last steps in between
// without the Go runtime's help (pkg/rlimit Apply: limits meant for the
// payload).
type Exec struct {
	path       *byte
	argv, envv []*byte
}

// PrepareExec allocates what Run needs to execute path with argv and envv.
func PrepareExec(path string, argv, envv []string) (*Exec, error) {
	pathp, err := unix.BytePtrFromString(path)
	if err != nil {
		return nil, err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return nil, err
	}
	envvp, err := syscall.SlicePtrFromStrings(envv)
	if err != nil {
		return nil, err
	}
	return &Exec{path: pathp, argv: argvp, envv: envvp}, nil
}

// Run installs in on the calling OS thread and executes x's path with its
// argv and envv right after it: the two system calls back to back, from
// one function the Go scheduler cannot preempt, with every argument
// allocated beforehand. Nothing of the Go runtime runs on the filtered
// thread in between (no futex, mmap, clone, sigaltstack of its own), so
// the filter need allow nothing but execve for the program to start: a
// profile learned from a workload (pkg/learn) holds that workload's calls
// and not the runtime's. A signal arriving in that window is handled and
// returns through rt_sigreturn, which every Bulwark profile allows.
//
// A nil in executes without installing anything. It returns only on
// failure: a load error as an error naming the filter, a failed execve as
// its bare unix.Errno. A failed execve leaves the filter in place: what
// the caller does next runs under it, so it should only report and exit.
func (x *Exec) Run(in *Installable) error {
	// The filter goes on this thread only: it must stay the one that
	// executes (never unlocked: execve either replaces the process or
	// the caller exits).
	runtime.LockOSThread()
	// As syscall.Exec: no thread may be in clone(2) during execve, or the
	// kernel treats the exec as shared and drops set-user-ID (Go issue
	// 19546).
	var flags uintptr
	var fprog unsafe.Pointer
	if in != nil {
		flags, fprog = in.flags, unsafe.Pointer(&in.fprog)
	}
	beforeExec()
	loadErr, execErr := installAndExec(flags, fprog, unsafe.Pointer(x.path), unsafe.Pointer(&x.argv[0]), unsafe.Pointer(&x.envv[0]))
	afterExec()
	runtime.KeepAlive(in)
	runtime.KeepAlive(x)
	if loadErr != 0 {
		return in.loadError(loadErr)
	}
	return execErr
}

// installAndExec is seccomp(2) then execve(2). go:nosplit makes every
// instruction of it an unsafe point for asynchronous preemption, and the
// raw system calls it makes do not enter the scheduler: the goroutine
// cannot be moved or parked between the two calls.
//
//go:nosplit
func installAndExec(flags uintptr, fprog, path, argv, envv unsafe.Pointer) (loadErr, execErr unix.Errno) {
	if fprog == nil {
		_, _, e := unix.RawSyscall(unix.SYS_EXECVE, uintptr(path), uintptr(argv), uintptr(envv))
		return 0, e
	}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(fprog))
	if e == unix.EINVAL && flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
		// A kernel before 6.0: WaitKillableRecv is an improvement only.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		_, _, e = unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(fprog))
	}
	if e != 0 {
		return e, 0
	}
	_, _, e = unix.RawSyscall(unix.SYS_EXECVE, uintptr(path), uintptr(argv), uintptr(envv))
	return 0, e
}

// The runtime's own exec lock, the one syscall.Exec takes: thread creation
// waits while it is held.
//
//go:linkname beforeExec syscall.runtime_BeforeExec
func beforeExec()

//go:linkname afterExec syscall.runtime_AfterExec
func afterExec()
