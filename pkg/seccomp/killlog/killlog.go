// Package killlog finds which system call a seccomp filter killed a
// process for, in the kernel's audit records (type=1326, which the kernel
// writes to its log for the kill actions by default, kernel.seccomp.
// actions_logged), so that `bulwark run` can name it instead of saying
// only "killed by SIGSYS".
//
// The threat it answers is usability turned into insecurity: a denial
// that names nothing gets the filter switched off. It reads, never
// trusts: a record is used only when it is a seccomp record with the kill
// signal, its fields are taken by exact key, and the process names the
// kernel prints (comm, exe) are shown as evidence, never acted on.
//
// Do not use it as an audit trail: the kernel rate-limits what it prints
// without auditd, /dev/kmsg needs root (or dmesg_restrict=0), and a kill
// of a process other than the one watched is only a guess. Watch returns
// an error where the log cannot be read, and callers then say less.
package killlog

import (
	"errors"
	"strconv"
	"strings"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Kill is one seccomp kill the kernel recorded.
type Kill struct {
	PID     int
	Comm    string
	Exe     string
	Syscall int
	// Name is the system call's name on this architecture, "" when
	// libseccomp does not know the number.
	Name string
}

// Watch reads the kernel log from the moment it is made on.
type Watch struct{ fd int }

// Start opens /dev/kmsg at its end, so only records written from now on
// are read.
func Start() (*Watch, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &Watch{fd: fd}, nil
}

// Kills returns the seccomp kills recorded since Start (or the last
// call), oldest first, and closes nothing: call Close when done.
func (w *Watch) Kills() ([]Kill, error) {
	if w == nil {
		return nil, errors.New("no kernel log watch")
	}
	var out []Kill
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(w.fd, buf)
		switch {
		case err == unix.EPIPE:
			// The ring buffer overwrote records before they were
			// read; the next read continues after them.
			continue
		case err == unix.EAGAIN:
			return out, nil
		case err != nil:
			return out, err
		case n == 0:
			return out, nil
		}
		if k, ok := Parse(string(buf[:n])); ok {
			out = append(out, k)
		}
	}
}

// Close releases the log.
func (w *Watch) Close() {
	if w != nil {
		unix.Close(w.fd)
	}
}

// Parse reads one /dev/kmsg record ("6,123,456,-;audit: type=1326 ...")
// or dmesg line, and reports whether it is a seccomp kill by SIGSYS.
func Parse(rec string) (Kill, bool) {
	if i := strings.IndexByte(rec, ';'); i >= 0 && !strings.Contains(rec[:i], " ") {
		rec = rec[i+1:]
	}
	rec, _, _ = strings.Cut(rec, "\n")
	_, rec, ok := strings.Cut(rec, "audit: type=1326 ")
	if !ok {
		return Kill{}, false
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(rec) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := f[k]; !dup {
				f[k] = v
			}
		}
	}
	if f["sig"] != "31" {
		return Kill{}, false
	}
	pid, err1 := strconv.Atoi(f["pid"])
	nr, err2 := strconv.Atoi(f["syscall"])
	if err1 != nil || err2 != nil || pid <= 0 || nr < 0 {
		return Kill{}, false
	}
	k := Kill{PID: pid, Syscall: nr, Comm: strings.Trim(f["comm"], `"`), Exe: strings.Trim(f["exe"], `"`)}
	if name, err := libseccomp.ScmpSyscall(nr).GetName(); err == nil {
		k.Name = name
	}
	return k, true
}
