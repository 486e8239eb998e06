// Command spin is the syscall-heavy payload of the seccomp benchmark. It is
// built static (CGO_ENABLED=0) and copied into the bench rootfs.
//
//	spin getppid N   N raw getppid(2) calls, prints "getppid N ns_per_op"
//
// getppid is used because the kernel does almost nothing for it, so the
// per-call time is dominated by syscall entry/exit and, when a filter is
// installed, by running the seccomp BPF program.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "getppid" {
		fmt.Fprintln(os.Stderr, "usage: spin getppid N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "spin: N must be a positive integer")
		os.Exit(2)
	}
	// One OS thread for the whole loop: a migration between threads would
	// add scheduler noise unrelated to the filter.
	runtime.LockOSThread()
	// RawSyscall, not syscall.Getppid: the latter goes through
	// entersyscall/exitsyscall, which would add Go runtime cost per call.
	start := time.Now()
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	el := time.Since(start)
	fmt.Printf("getppid %d %.2f\n", n, float64(el.Nanoseconds())/float64(n))
}
