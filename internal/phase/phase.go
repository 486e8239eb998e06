// Package phase prints monotonic timestamps of start-path phases when
// BULWARK_PHASES is set, to find where a container's start spends its time,
// and hands the same marks to the debug log (--debug).
package phase

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var on = os.Getenv("BULWARK_PHASES") != ""

// On reports whether marks are printed.
func On() bool { return on }

var debug func(string)

// Debug sends every later mark to log as well (--debug): the runtime's
// steps in order, for a person finding where a start fails or hangs.
func Debug(log func(string)) { debug = log }

// Mark prints one phase boundary.
func Mark(name string) {
	if debug != nil {
		debug(name)
	}
	if !on {
		return
	}
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	fmt.Fprintf(os.Stderr, "PHASE %d.%06d %d %s\n", ts.Sec, ts.Nsec/1000, os.Getpid(), name)
}
