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
// It also reads the other actions' records (Decision), which the kernel
// writes for a filter loaded with SECCOMP_FILTER_FLAG_LOG: `bulwark run
// --log-denied` names each denied call with them.
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
	"time"

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
type Watch struct {
	fd int
	// Suppressed counts the audit records the kernel's printk rate limit
	// dropped since Start ("kauditd_printk_skb: N callbacks suppressed";
	// without auditd, 10 per 5 s pass): any process's, not only the
	// watched one's.
	Suppressed int
}

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
	err := w.read(func(rec string) {
		if k, ok := Parse(rec); ok {
			out = append(out, k)
		}
	})
	return out, err
}

// read hands every record written since the last read to fn.
func (w *Watch) read(fn func(rec string)) error {
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(w.fd, buf)
		switch {
		case err == unix.EPIPE:
			// The ring buffer overwrote records before they were
			// read; the next read continues after them.
			continue
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return err
		case n == 0:
			return nil
		}
		fn(string(buf[:n]))
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
	d, ok := ParseDecision(rec)
	if !ok || d.Sig != 31 {
		return Kill{}, false
	}
	return d.Kill, true
}

// Decision is any seccomp record: a kill (logged by default), or, from a
// filter loaded with SECCOMP_FILTER_FLAG_LOG, every other action but
// allow: an errno, a trap, a notification, a logged call.
type Decision struct {
	Kill
	Sig int
	// Code is the filter's return value: the action in its upper 16
	// bits (SECCOMP_RET_ERRNO, ...), its data (the errno) in the lower.
	Code uint32
}

// Denied reports whether the call was refused: anything but a logged
// call let through (SECCOMP_RET_LOG) or one sent to a listener.
func (d Decision) Denied() bool {
	switch d.Code & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_ALLOW:
		return false
	}
	return true
}

// ParseDecision reads one record as Parse does, of any seccomp action.
func ParseDecision(rec string) (Decision, bool) {
	if i := strings.IndexByte(rec, ';'); i >= 0 && !strings.Contains(rec[:i], " ") {
		rec = rec[i+1:]
	}
	rec, _, _ = strings.Cut(rec, "\n")
	_, rec, ok := strings.Cut(rec, "audit: type=1326 ")
	if !ok {
		return Decision{}, false
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(rec) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := f[k]; !dup {
				f[k] = v
			}
		}
	}
	pid, err1 := strconv.Atoi(f["pid"])
	nr, err2 := strconv.Atoi(f["syscall"])
	sig, err3 := strconv.Atoi(f["sig"])
	if err1 != nil || err2 != nil || err3 != nil || pid <= 0 || nr < 0 {
		return Decision{}, false
	}
	d := Decision{Kill: Kill{PID: pid, Syscall: nr, Comm: strings.Trim(f["comm"], `"`), Exe: strings.Trim(f["exe"], `"`)}, Sig: sig}
	if c, err := strconv.ParseUint(strings.TrimPrefix(f["code"], "0x"), 16, 32); err == nil {
		d.Code = uint32(c)
	} else if sig == 31 {
		d.Code = unix.SECCOMP_RET_KILL_PROCESS // a kill whose code is missing is still a kill
	}
	if name, err := libseccomp.ScmpSyscall(nr).GetName(); err == nil {
		d.Name = name
	}
	return d, true
}

// Decisions returns every seccomp record since Start (or the last call),
// oldest first.
func (w *Watch) Decisions() ([]Decision, error) {
	if w == nil {
		return nil, errors.New("no kernel log watch")
	}
	var out []Decision
	err := w.read(func(rec string) {
		if d, ok := ParseDecision(rec); ok {
			out = append(out, d)
		} else if n, ok := suppressed(rec); ok {
			w.Suppressed += n
		}
	})
	return out, err
}

// Wait blocks until the log has a new record or timeout passes.
func (w *Watch) Wait(timeout time.Duration) {
	if w == nil {
		time.Sleep(timeout)
		return
	}
	pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	_, _ = unix.Poll(pfd, int(timeout/time.Millisecond))
}

// suppressed reads "kauditd_printk_skb: N callbacks suppressed".
func suppressed(rec string) (int, bool) {
	_, rest, ok := strings.Cut(rec, "kauditd_printk_skb: ")
	if !ok {
		return 0, false
	}
	f := strings.Fields(rest)
	if len(f) < 3 || f[1] != "callbacks" || f[2] != "suppressed" {
		return 0, false
	}
	n, err := strconv.Atoi(f[0])
	return n, err == nil && n > 0
}
