// Package payload holds the few helpers the static test payloads share:
// errno naming, JSON output and forking a single-threaded child.
//
// Payloads run inside test containers and their output is parsed by tests,
// so every result is reported as a stable token (the errno's C name) rather
// than Go's prose error strings.
package payload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrnoName returns "OK" for nil, the C name ("EPERM") for an errno
// anywhere in err's chain, and err's text otherwise.
func ErrnoName(err error) string {
	if err == nil {
		return "OK"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		if e == 0 {
			return "OK"
		}
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(e))
	}
	return err.Error()
}

// PrintJSON writes v as indented JSON to stdout.
func PrintJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Usage prints a usage error and exits 2, the payloads' convention for
// "the test called me wrongly" as opposed to "the syscall failed".
func Usage(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

// ForkSyscall forks a single-threaded child with clone(SIGCHLD|cloneFlags)
// that performs one raw syscall and exits with its errno, and returns that
// errno. It exists because a Go process is always multi-threaded, and the
// kernel refuses unshare(CLONE_NEWUSER) and setns into a user or mount
// namespace from a multi-threaded process: a payload asking "would the
// kernel let me?" must ask from a single thread. It also keeps the
// namespace change out of the payload itself. A child killed by a signal
// (for example SECCOMP_RET_KILL) is reported as a negative signal number.
func ForkSyscall(cloneFlags uintptr, trap uintptr, a1, a2, a3, a4, a5, a6 uintptr) (syscall.Errno, int, error) {
	pid, errno := forkDo(cloneFlags, trap, a1, a2, a3, a4, a5, a6)
	if errno != 0 {
		return 0, 0, errno
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(int(pid), &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		break
	}
	if ws.Signaled() {
		return 0, -int(ws.Signal()), nil
	}
	return syscall.Errno(ws.ExitStatus()), 0, nil
}

// forkDo must not grow its stack or touch the Go runtime after clone: the
// child is a copy of one thread of a runtime it cannot use (the same rule
// syscall.forkAndExecInChild follows).
//
//go:nosplit
//go:norace
func forkDo(cloneFlags uintptr, trap uintptr, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD)|cloneFlags, 0, 0, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if pid != 0 {
		return pid, 0
	}
	_, _, e := syscall.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(e), 0, 0)
	return 0, 0 // not reached
}

// ForkPause forks a single-threaded child that sleeps in pause(2) until it
// is killed. Unlike os.StartProcess of a Go binary, each child is exactly
// one task, so a pids limit of N admits N of them (what a fork bomb test
// wants to count).
func ForkPause() (int, error) {
	pid, errno := forkPause()
	if errno != 0 {
		return 0, errno
	}
	return int(pid), nil
}

//go:nosplit
//go:norace
func forkPause() (uintptr, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if pid != 0 {
		return pid, 0
	}
	for {
		syscall.RawSyscall(syscall.SYS_PAUSE, 0, 0, 0)
	}
}
