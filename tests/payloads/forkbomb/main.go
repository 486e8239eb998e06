// forkbomb is a bounded fork bomb: it forks up to N single-task children
// that sleep, reports how many forks succeeded and the errno that stopped
// it (EAGAIN under a pids limit), then kills and reaps them all.
package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) != 2 {
		payload.Usage("usage: forkbomb N")
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 {
		payload.Usage("forkbomb: N must be a non-negative integer")
	}
	var pids []int
	result := "OK"
	for len(pids) < n {
		pid, err := payload.ForkPause()
		if err != nil {
			result = payload.ErrnoName(err)
			break
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		unix.Kill(pid, unix.SIGKILL)
	}
	reaped := 0
	for _, pid := range pids {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err == nil {
				reaped++
			}
			break
		}
	}
	payload.PrintJSON(map[string]any{"requested": n, "forked": len(pids), "result": result, "reaped": reaped})
}
