// ipcs stands in for util-linux's `ipcs -m` in critest's images (busybox's
// ipcs applet is not in Debian's build): it lists the IPC namespace's
// System V shared memory segments from /proc/sysvipc/shm in util-linux's
// columns. critest's HostIpc specs look for a segment the host made by its
// shmid, so the header has no digits and only the segments' own columns
// do.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

const (
	shmDest   = 0o1000
	shmLocked = 0o2000
)

func main() {
	if len(os.Args) > 2 || (len(os.Args) == 2 && os.Args[1] != "-m") {
		fmt.Fprintln(os.Stderr, "usage: ipcs [-m] (only shared memory segments)")
		os.Exit(1)
	}
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
		os.Exit(1)
	}
	defer f.Close()
	users := names("/etc/passwd")
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "\n------ Shared Memory Segments --------\n")
	fmt.Fprintf(w, "%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n", "key", "shmid", "owner", "perms", "bytes", "nattch", "status")
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// key shmid perms size cpid lpid nattch uid gid cuid cgid ...
		fld := strings.Fields(sc.Text())
		if len(fld) < 11 {
			continue
		}
		key, _ := strconv.ParseInt(fld[0], 10, 64)
		perms, _ := strconv.ParseUint(fld[2], 8, 32)
		owner := fld[7]
		if n, ok := users[owner]; ok {
			owner = n
		}
		var status []string
		if perms&shmDest != 0 {
			status = append(status, "dest")
		}
		if perms&shmLocked != 0 {
			status = append(status, "locked")
		}
		fmt.Fprintf(w, "0x%08x %-10s %-10.10s %-10o %-10s %-10s %-12s\n",
			uint32(key), fld[1], owner, perms&0o777, fld[3], fld[6], strings.Join(status, " "))
	}
	fmt.Fprintln(w)
}

// names maps the uids in a passwd file to user names.
func names(passwd string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(passwd)
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) > 2 {
			m[f[2]] = f[0]
		}
	}
	return m
}
