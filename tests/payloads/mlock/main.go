// mlock maps N MiB and tries to lock it in memory, printing the result as
// JSON (OK, EPERM without CAP_IPC_LOCK above RLIMIT_MEMLOCK, ENOMEM, ...).
package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) != 2 {
		payload.Usage("usage: mlock MIB")
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		payload.Usage("mlock: MIB must be a positive integer")
	}
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
	b, err := unix.Mmap(-1, 0, n<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		payload.PrintJSON(map[string]any{"mib": n, "result": payload.ErrnoName(err)})
		return
	}
	err = unix.Mlock(b)
	if err == nil {
		unix.Munlock(b)
	}
	payload.PrintJSON(map[string]any{"mib": n, "result": payload.ErrnoName(err), "rlimit_memlock": lim.Cur})
}
