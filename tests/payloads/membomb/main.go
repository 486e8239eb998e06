// membomb allocates and touches anonymous memory 1 MiB at a time up to N
// MiB. It prints "allocated K" after each MiB so that a test still learns
// how far it got when the OOM killer ends it, then a final JSON line.
package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) != 2 {
		payload.Usage("usage: membomb MIB")
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		payload.Usage("membomb: MIB must be a non-negative integer")
	}
	const mib = 1 << 20
	page := os.Getpagesize()
	result := "OK"
	got := 0
	// mmap rather than make(): the Go heap would not return or account the
	// memory as predictably, and the GC must not scan it.
	for got < n {
		b, err := unix.Mmap(-1, 0, mib, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			result = payload.ErrnoName(err)
			break
		}
		for i := 0; i < mib; i += page {
			b[i] = 1
		}
		got++
		fmt.Printf("allocated %d\n", got)
	}
	payload.PrintJSON(map[string]any{"requested_mib": n, "allocated_mib": got, "result": result})
}
