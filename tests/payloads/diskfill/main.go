// diskfill writes 1 MiB blocks to PATH up to N MiB and reports how far it
// got and why it stopped (OK, ENOSPC, EROFS, EDQUOT, ...). The file is
// removed afterwards unless -keep is given, so a test that proves a limit
// leaves the filesystem as it found it.
package main

import (
	"flag"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	keep := flag.Bool("keep", false, "leave the file in place")
	flag.Parse()
	if flag.NArg() != 2 {
		payload.Usage("usage: diskfill [-keep] PATH MIB")
	}
	path := flag.Arg(0)
	n, err := strconv.Atoi(flag.Arg(1))
	if err != nil || n < 0 {
		payload.Usage("diskfill: MIB must be a non-negative integer")
	}
	written := 0
	result := "OK"
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		payload.PrintJSON(map[string]any{"path": path, "requested_mib": n, "written_mib": 0, "result": payload.ErrnoName(err)})
		return
	}
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i)
	}
	for written < n {
		w, err := unix.Write(fd, block)
		if err != nil {
			result = payload.ErrnoName(err)
			break
		}
		if w < len(block) {
			// A short write is how a full filesystem answers first;
			// the next write returns the errno.
			continue
		}
		written++
	}
	// Delayed allocation can defer ENOSPC to writeback: fsync surfaces it.
	if err := unix.Fsync(fd); err != nil && result == "OK" {
		result = payload.ErrnoName(err)
	}
	unix.Close(fd)
	if !*keep {
		os.Remove(path)
	}
	payload.PrintJSON(map[string]any{"path": path, "requested_mib": n, "written_mib": written, "result": result})
}
