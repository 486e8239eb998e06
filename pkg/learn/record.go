package learn

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// The kernel's struct seccomp_notif and struct seccomp_notif_resp
// (linux/seccomp.h); x/sys/unix has the ioctl numbers but not the types.
type notif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type notifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

const (
	// seccompNotifySyncWakeUp (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux
	// 6.6) wakes the listener on the notifying task's CPU: a recorded call
	// costs a context switch instead of a cross-CPU wake-up.
	seccompNotifySyncWakeUp = 1
	// attachTimeout bounds the wait for the init to load its recording
	// filter after the container's state exists; the init blocks in
	// execve until the recorder attaches, so a wait without end would be
	// a hang.
	attachTimeout = 30 * time.Second
)

// Recorder collects what one container's processes do through the
// listener of its recording filter (pkg/seccomp Recording). Every call is
// answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel then runs it
// as if no filter had asked, so learning changes nothing the workload
// sees, only its speed.
type Recorder struct {
	mu   sync.Mutex
	obs  *Observed
	err  error
	done chan struct{}
	stop chan struct{}
	once sync.Once
}

// Attach starts a recorder for the container whose init pid pidOf reports
// once the container exists. The init loads the recording filter just
// before execve and keeps its listener fd; Attach finds that fd in
// /proc/PID/fd and takes a copy with pidfd_getfd(2), so the init never
// has to send it and none of its calls can wait on a listener that does
// not exist yet. Calls the init makes before its execve (the runtime's
// own) are not recorded.
func Attach(pidOf func() (int, bool)) *Recorder {
	return AttachFor(pidOf, attachTimeout)
}

// AttachFor is Attach waiting up to timeout (0: until Stop) for the
// recording filter: an engine's container loads it at start, which may
// come any time after create.
func AttachFor(pidOf func() (int, bool), timeout time.Duration) *Recorder {
	r := &Recorder{obs: NewObserved(), done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(r.done)
		err := r.run(pidOf, timeout)
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
	}()
	return r
}

// Stop ends the recording (the container has exited or is being torn
// down) and returns what was seen. A listener that was never attached is
// an error: nothing was recorded.
func (r *Recorder) Stop() (*Observed, error) {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.obs, r.err
}

func (r *Recorder) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *Recorder) run(pidOf func() (int, bool), timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var pid, fd int
	for {
		if p, ok := pidOf(); ok && p > 0 {
			pid = p
			if n, ok := notifyFd(p); ok {
				var err error
				if fd, err = grabFd(p, n); err != nil {
					return err
				}
				break
			}
		}
		if r.stopped() {
			return errors.New("learn: the container ended before its recording filter was loaded: nothing was recorded")
		}
		if timeout > 0 && time.Now().After(deadline) {
			return fmt.Errorf("learn: no recording filter in the container's init (pid %d) after %s", pid, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	defer unix.Close(fd)
	// Best effort: an older kernel has no sync wake-up and is only slower.
	_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, seccompNotifySyncWakeUp)
	return r.serve(fd, pid)
}

// notifyFd finds the seccomp listener among pid's fds.
func notifyFd(pid int) (int, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == "anon_inode:seccomp notify" {
			n, err := strconv.Atoi(e.Name())
			return n, err == nil
		}
	}
	return 0, false
}

func grabFd(pid, n int) (int, error) {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("learn: pidfd_open(%d): %w", pid, err)
	}
	defer unix.Close(pfd)
	fd, err := unix.PidfdGetfd(pfd, n, 0)
	if err != nil {
		return -1, fmt.Errorf("learn: taking the recording listener from pid %d (pidfd_getfd, Linux >= 5.6): %w", pid, err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// serve answers notifications until every process under the filter is
// gone (POLLHUP) or Stop is called. The init's own calls before its first
// execve are the runtime's, not the workload's, and are let through
// unrecorded.
func (r *Recorder) serve(fd, initPid int) error {
	// One thread answers every call; locking it keeps the sync wake-up on
	// one CPU pairing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	started := false
	mem := newMemReader()
	defer mem.close()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("learn: poll on the recording listener: %w", err)
		}
		if n <= 0 {
			if r.stopped() {
				return nil
			}
			continue
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			return nil // POLLHUP: no process is left under the filter
		}
		var req notif
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req))); e != 0 {
			if e == unix.EINTR || e == unix.ENOENT {
				continue // the caller was killed before we read it
			}
			return fmt.Errorf("learn: reading a notification: %w", e)
		}
		name := seccomp.SyscallName(req.nr, req.arch)
		if !started && int(req.pid) == initPid && (name == "execve" || name == "execveat") {
			started = true
		}
		if started {
			r.mu.Lock()
			mem.pid = int(req.pid)
			r.obs.record(name, req.args, mem)
			r.mu.Unlock()
		}
		resp := notifResp{id: req.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); e != 0 && e != unix.ENOENT {
			return fmt.Errorf("learn: answering a notification: %w", e)
		}
	}
}

// memReader reads strings and sockaddrs out of a stopped caller's memory
// (the caller waits in its syscall until it is answered, so the pointers
// are valid) through /proc/PID/mem, one open file per process.
type memReader struct {
	files map[int]*os.File
	pid   int // the caller being answered
}

func newMemReader() *memReader { return &memReader{files: map[int]*os.File{}} }

func (m *memReader) close() {
	for _, f := range m.files {
		f.Close()
	}
}

func (m *memReader) read(pid int, addr uint64, buf []byte) int {
	f := m.files[pid]
	if f == nil {
		var err error
		if f, err = os.Open("/proc/" + strconv.Itoa(pid) + "/mem"); err != nil {
			return 0
		}
		if len(m.files) > 256 {
			m.close()
			m.files = map[int]*os.File{}
		}
		m.files[pid] = f
	}
	n, _ := f.ReadAt(buf, int64(addr))
	if n <= 0 {
		// A process that exec'd has a new mm: reopen once.
		f.Close()
		delete(m.files, pid)
		if f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem"); err == nil {
			m.files[pid] = f
			n, _ = f.ReadAt(buf, int64(addr))
		}
	}
	return max(n, 0)
}

func (m *memReader) bytes(addr uint64, n int) []byte {
	buf := make([]byte, n)
	return buf[:m.read(m.pid, addr, buf)]
}

// str reads a NUL-terminated path; "" for a null pointer or bad address.
func (m *memReader) str(addr uint64) string {
	pid := m.pid
	if addr == 0 {
		return ""
	}
	var out []byte
	buf := make([]byte, 256)
	for len(out) < unix.PathMax {
		// Reads stop at a page end: a string near the end of a mapping
		// must not fail for the unmapped bytes after it.
		chunk := min(uint64(len(buf)), 4096-(addr%4096))
		n := m.read(pid, addr, buf[:chunk])
		if n == 0 {
			break
		}
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return string(append(out, buf[:i]...))
		}
		out = append(out, buf[:n]...)
		addr += uint64(n)
	}
	return ""
}

func (m *memReader) exists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Lstat("/proc/" + strconv.Itoa(m.pid) + "/root" + p)
	return err == nil
}

// dir is where a relative path of pid's is resolved: its cwd, or the
// directory dirfd names, as the container sees them (the links under
// /proc are relative to the container's root, which is its mount
// namespace's root).
func (m *memReader) dir(dirfd int32) string {
	pid := m.pid
	p := "/proc/" + strconv.Itoa(pid) + "/cwd"
	if dirfd != unix.AT_FDCWD {
		p = "/proc/" + strconv.Itoa(pid) + "/fd/" + strconv.Itoa(int(dirfd))
	}
	l, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return l
}
