// Package phase prints monotonic timestamps of start-path phases when
// BULWARK_PHASES is set, to find where a container's start spends its time.
package phase

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var on = os.Getenv("BULWARK_PHASES") != ""

// On reports whether marks are printed.
func On() bool { return on }

// Mark prints one phase boundary.
func Mark(name string) {
	if !on {
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	fmt.Fprintf(os.Stderr, "PHASE %d.%06d %d %s\n", ts.Sec, ts.Nsec/1000, os.Getpid(), name)
}
