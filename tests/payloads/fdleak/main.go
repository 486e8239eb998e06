// fdleak looks for the CVE-2024-21626 class of leaks: file descriptors or a
// working directory that the runtime left pointing outside the container's
// root. For each directory fd (and the cwd) it walks ".." with openat until
// it reaches a directory that is its own parent; if that directory is not
// the container's "/", the fd leads out of the container. Output is JSON;
// "escapes" counts the fds and cwd that lead outside.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

type entry struct {
	FD     int    `json:"fd"`
	Target string `json:"target"`
	Kind   string `json:"kind"`
	// Outside is true when the fd leads out of the container's root.
	Outside bool `json:"outside"`
	// Reason says how Outside was decided.
	Reason string `json:"reason,omitempty"`
}

type report struct {
	Root    string  `json:"root"`
	Getcwd  string  `json:"getcwd"`
	Cwd     entry   `json:"cwd"`
	FDs     []entry `json:"fds"`
	Escapes int     `json:"escapes"`
}

func main() {
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		payload.Usage("fdleak: stat /: %v", err)
	}
	r := report{Root: fmt.Sprintf("%d:%d", root.Dev, root.Ino)}

	// getcwd(2) reports "(unreachable)" or ENOENT for a cwd outside the root.
	if wd, err := os.Getwd(); err == nil {
		r.Getcwd = wd
	} else {
		r.Getcwd = "error: " + payload.ErrnoName(err)
	}
	cwdFD, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		r.Cwd = inspect(cwdFD, &root)
		r.Cwd.FD = -1
		unix.Close(cwdFD)
	} else {
		r.Cwd = entry{FD: -1, Kind: "error", Reason: payload.ErrnoName(err)}
	}

	// Snapshot the fd numbers before opening anything of our own.
	names, _ := os.ReadDir("/proc/self/fd")
	var fds []int
	for _, n := range names {
		if fd, err := strconv.Atoi(n.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue // the fd ReadDir used, closed by now
		}
		r.FDs = append(r.FDs, inspect(fd, &root))
	}
	if r.FDs == nil {
		r.FDs = []entry{}
	}
	if r.Cwd.Outside {
		r.Escapes++
	}
	for _, e := range r.FDs {
		if e.Outside {
			r.Escapes++
		}
	}
	payload.PrintJSON(r)
}

func inspect(fd int, root *unix.Stat_t) entry {
	e := entry{FD: fd}
	e.Target, _ = os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		e.Kind, e.Reason = "error", payload.ErrnoName(err)
		return e
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Kind = "dir"
		e.Outside, e.Reason = walkUp(fd, root)
	case unix.S_IFREG:
		e.Kind = "file"
		e.Outside, e.Reason = samePath(e.Target, &st)
	case unix.S_IFCHR:
		// A device node grants what its device number grants, wherever
		// the node lives: its path says nothing about an escape.
		e.Kind = "chr"
	case unix.S_IFIFO:
		e.Kind = "pipe"
	case unix.S_IFSOCK:
		e.Kind = "socket"
	default:
		e.Kind = "other"
	}
	return e
}

// walkUp follows ".." from a directory fd to the top of the tree it can
// reach and compares that top with our root.
func walkUp(fd int, root *unix.Stat_t) (bool, string) {
	cur, err := unix.Openat(fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, "reopen: " + payload.ErrnoName(err)
	}
	for depth := 0; depth < 4096; depth++ {
		var st unix.Stat_t
		if err := unix.Fstat(cur, &st); err != nil {
			unix.Close(cur)
			return false, "fstat: " + payload.ErrnoName(err)
		}
		if st.Dev == root.Dev && st.Ino == root.Ino {
			unix.Close(cur)
			return false, fmt.Sprintf("reaches / after %d step(s)", depth)
		}
		up, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(cur)
		if err != nil {
			return false, "openat ..: " + payload.ErrnoName(err)
		}
		var ust unix.Stat_t
		if err := unix.Fstat(up, &ust); err != nil {
			unix.Close(up)
			return false, "fstat: " + payload.ErrnoName(err)
		}
		if ust.Dev == st.Dev && ust.Ino == st.Ino {
			unix.Close(up)
			return true, fmt.Sprintf("top %d:%d after %d step(s) is not our root", st.Dev, st.Ino, depth)
		}
		cur = up
	}
	unix.Close(cur)
	return true, "no root within 4096 steps"
}

// samePath decides for non-directories: the fd is outside when its path,
// looked up inside our root, is not the same inode.
func samePath(target string, st *unix.Stat_t) (bool, string) {
	if len(target) == 0 || target[0] != '/' {
		return false, ""
	}
	var pst unix.Stat_t
	if err := unix.Stat(target, &pst); err != nil {
		return true, "path not in our root: " + payload.ErrnoName(err)
	}
	if pst.Dev != st.Dev || pst.Ino != st.Ino {
		return true, "path in our root is a different inode"
	}
	return false, ""
}
