// spin measures and burns: "spin getppid N" makes N raw getppid syscalls
// and prints the cost per call (what a seccomp filter adds shows up here);
// "spin cpu SECONDS" keeps one CPU busy for that long.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) != 3 {
		payload.Usage("usage: spin getppid N | spin cpu SECONDS")
	}
	switch os.Args[1] {
	case "getppid":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n <= 0 {
			payload.Usage("spin: N must be a positive integer")
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			// RawSyscall: no scheduler hooks, so only the kernel entry
			// (and the filter) is measured.
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		el := time.Since(start)
		payload.PrintJSON(map[string]any{"op": "getppid", "n": n, "ns_per_op": float64(el.Nanoseconds()) / float64(n)})
	case "cpu":
		secs, err := strconv.ParseFloat(os.Args[2], 64)
		if err != nil || secs < 0 {
			payload.Usage("spin: SECONDS must be a non-negative number")
		}
		end := time.Now().Add(time.Duration(secs * float64(time.Second)))
		var iters uint64
		x := uint64(1)
		for time.Now().Before(end) {
			for i := 0; i < 100000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
			iters++
		}
		fmt.Fprintf(os.Stderr, "spin: %x\n", x>>60) // keep the loop from being optimised away
		payload.PrintJSON(map[string]any{"op": "cpu", "seconds": secs, "iterations": iters * 100000})
	default:
		payload.Usage("usage: spin getppid N | spin cpu SECONDS")
	}
}
