package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// filterSize reports how many classic-BPF instructions the seccomp filters
// of a running process hold. The cost per system call follows from it (the
// kernel runs the program on every call), so it explains the ns/call table:
// a linear list of ~400 syscalls costs more than a binary search over it.
// PTRACE_SECCOMP_GET_FILTER needs the tracee stopped and us its tracer.
func filterSize(pid int) (filters, insns int, err error) {
	// ptrace ties the tracee to the tracing OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		return 0, 0, fmt.Errorf("PTRACE_SEIZE: %w", err)
	}
	defer unix.PtraceDetach(pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		return 0, 0, fmt.Errorf("PTRACE_INTERRUPT: %w", err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return 0, 0, fmt.Errorf("wait for the tracee to stop: %w", err)
	}
	// Index 0 is the newest filter; walk the chain until the kernel says
	// there is none left.
	for i := 0; i < 64; i++ {
		n, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), uintptr(i), 0, 0, 0)
		if errno == unix.ENOENT {
			break
		}
		if errno != 0 {
			return filters, insns, fmt.Errorf("PTRACE_SECCOMP_GET_FILTER: %w", errno)
		}
		filters++
		insns += int(n)
	}
	return filters, insns, nil
}

// findComm polls our descendants for a process named comm.
func findComm(comm string, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, p := range descendants(os.Getpid()) {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm")
			if err == nil && strings.TrimSpace(string(b)) == comm {
				return p
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0
}

// probeFilter runs spin under rt with profile p and measures the filter the
// runtime actually installed.
func (b *bench) probeFilter(rt *rtime, p profile, calls int) string {
	id := b.newID(rt)
	dir, err := b.bundle(id, []string{"/bin/spin", "getppid", strconv.Itoa(calls)}, layers{seccomp: p.s})
	if err != nil {
		return "n/a"
	}
	defer b.rmBundle(dir)
	pr, err := spawn(b.work, b.cmd(rt, "run", "-b", dir, id))
	if err != nil {
		return "n/a"
	}
	out := "n/a: spin not seen"
	if pid := findComm("spin", 10*time.Second); pid > 0 {
		if seccompMode(pid) == "0" {
			out = "none"
		} else if f, n, err := filterSize(pid); err != nil {
			out = "n/a: " + err.Error()
		} else if f == 0 {
			out = "none"
		} else {
			out = fmt.Sprintf("%d", n)
			if f > 1 {
				out += fmt.Sprintf(" in %d filters", f)
			}
		}
	}
	if r := pr.wait(); !r.ok() {
		run(b.work, b.cmd(rt, "delete", "-f", id)...)
		out = "n/a: " + r.err()
	}
	reapOrphans()
	return out
}

// seccompMode is the Seccomp: field of /proc/PID/status (0 off, 2 filter).
func seccompMode(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Seccomp:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
