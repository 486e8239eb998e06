package userface

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/killlog"
)

// A denial the person cannot tie to its cause gets the profile switched
// off; a run that ends badly therefore gets one line naming the likely
// cause and the flag that changes it. The hint is a guess from the exit
// status, the cgroup's OOM counter and the last lines of stderr, so it
// says "likely" and never appears after a successful run.

// hintPrefix starts every hint line, so scripts can filter them.
const hintPrefix = "bulwark: hint: "

// tailSize is how much of the payload's stderr is kept for the hint: the
// last lines are where a program says why it gave up.
const tailSize = 4 << 10

// stderrTee relays the payload's stderr to bulwark's own, unchanged, and
// keeps its last tailSize bytes.
type stderrTee struct {
	orig *os.File
	w    *os.File
	done chan struct{}
	mu   sync.Mutex
	tail []byte
}

// teeStderr puts a pipe in place of os.Stderr, which the container's init
// inherits (container.startInit), and relays it. The payload's fd 2 is a
// pipe then, not the person's terminal; with --tty it is the pty and
// nothing is teed.
func teeStderr() (*stderrTee, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stderr relay: %w", err)
	}
	t := &stderrTee{orig: os.Stderr, w: w, done: make(chan struct{})}
	os.Stderr = w
	go func() {
		defer close(t.done)
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				t.orig.Write(buf[:n])
				t.mu.Lock()
				t.tail = append(t.tail, buf[:n]...)
				if len(t.tail) > tailSize {
					t.tail = slices.Clone(t.tail[len(t.tail)-tailSize:])
				}
				t.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	return t, nil
}

// stop restores os.Stderr and returns the kept tail. The container's
// processes are gone by then (delete killed them), so the relay sees EOF
// at once; a process that escaped the kill and holds the pipe only costs
// the wait.
func (t *stderrTee) stop() []byte {
	if t == nil {
		return nil
	}
	os.Stderr = t.orig
	t.w.Close()
	select {
	case <-t.done:
	case <-time.After(2 * time.Second):
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.tail)
}

// oomKills is the OOM killer's count for the container's cgroup, read
// before delete removes it; 0 when it cannot be read.
func oomKills(rt *container.Runtime, id string) uint64 {
	st, err := rt.Load(id)
	if err != nil {
		return 0
	}
	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return 0
	}
	n, _ := m.OOMKills()
	return n
}

// exitSIGSYS is the shell convention 128+SIGSYS that container.Run reports
// for a payload seccomp killed.
const exitSIGSYS = 128 + 31

// Compiled on first use, not at start-up: every container start links
// this package, and only a failed person's run reads a hint.
var absPath = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(/[^\s:'"` + "`" + `,;()]+)`) })

// Outcome is how a run ended, as far as the hints read it.
type Outcome struct {
	Code int
	// OOMKills counts the processes the OOM killer ended in the
	// container's cgroup.
	OOMKills uint64
	// Tail is the last of the payload's stderr.
	Tail []byte
	// Seccomp is the kernel's record of the kill when Code is 159 and
	// the record was found.
	Seccomp *killlog.Kill
}

// outcome gathers what the hints read about container id, before delete
// removes its cgroup. The seccomp record is the init's own when the kernel
// logged one for its pid; otherwise a lone record since the run began
// (a child the payload forked, reported through the exit status).
func outcome(rt *container.Runtime, id string, code int, kills *killlog.Watch) Outcome {
	out := Outcome{Code: code, OOMKills: oomKills(rt, id)}
	if code != exitSIGSYS {
		return out
	}
	ks, _ := kills.Kills()
	if st, err := rt.Load(id); err == nil {
		for i := range ks {
			if ks[i].PID == st.Pid {
				out.Seccomp = &ks[i]
				return out
			}
		}
	}
	if len(ks) == 1 {
		out.Seccomp = &ks[0]
	}
	return out
}

// Hint returns the one line to print after a run of s (made from o) ended
// as out says; "" for a successful run or when nothing points anywhere.
func Hint(s *specs.Spec, o *Options, out Outcome) string {
	code, oom, tail := out.Code, out.OOMKills, out.Tail
	if code == 0 {
		return ""
	}
	profile := o.Profile
	if profile == "" {
		profile = "default"
	}
	switch {
	case code == exitSIGSYS:
		filter := "the " + profile + " profile's seccomp filter"
		if o.Seccomp != "" {
			filter = "the seccomp profile " + o.Seccomp
		}
		if k := out.Seccomp; k != nil {
			call := k.Name
			if call == "" {
				call = "system call " + strconv.Itoa(k.Syscall)
			}
			return fmt.Sprintf("killed by SIGSYS (exit 159): %s does not allow %s (the kernel's record: pid %d, %s); `bulwark explain --profile %s %s` says which profile allows it", filter, call, k.PID, k.Exe, profile, call)
		}
		return fmt.Sprintf("killed by SIGSYS (exit 159): a system call %s does not allow; `bulwark explain --profile %s SYSCALL` says which profile allows it (strace -f names the call; the kernel log's audit type=1326 record names it too, where the kernel printed it)", filter, profile)
	case oom > 0:
		return fmt.Sprintf("OOM-killed at the memory limit (%s): raise it with --memory, e.g. --memory %s", memoryLimit(s), suggestMemory(s))
	}
	lines := strings.Split(strings.TrimRight(string(tail), "\n"), "\n")
	// The last lines first: the final complaint is usually the fatal one.
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-10; i-- {
		if h := stderrHint(s, profile, lines[i]); h != "" {
			return h
		}
	}
	return ""
}

func stderrHint(s *specs.Spec, profile, line string) string {
	path := ""
	if m := absPath().FindString(line); m != "" {
		path = filepath.Clean(m)
	}
	switch {
	case strings.Contains(line, "Read-only file system") || strings.Contains(line, "EROFS"):
		where := "DIR"
		if path != "" {
			where = filepath.Dir(path)
			if where == "/" {
				where = path
			}
		}
		return fmt.Sprintf("%q: the rootfs is read-only under the %s profile: --writable, or a writable place with --tmpfs %s or -v SRC:%s", line, profile, where, where)
	case strings.Contains(line, "Operation not permitted") || strings.Contains(line, "EPERM"):
		if strings.Contains(line, "chown") || strings.Contains(line, "ownership") {
			return fmt.Sprintf("%q: chown needs CAP_CHOWN, which the %s profile lacks: --cap-add CHOWN or --profile dev", line, profile)
		}
		return fmt.Sprintf("%q: likely a capability the %s profile lacks: --cap-add CAP or another --profile; `bulwark explain --profile %s SYSCALL` names the one it needs", line, profile, profile)
	case strings.Contains(line, "Permission denied") || strings.Contains(line, "EACCES"):
		if path != "" {
			if m := mountOf(s, path); m != nil && slices.Contains(m.Options, "noexec") {
				return fmt.Sprintf("%q: %s is mounted noexec: --tmpfs %s:exec for a place programs can run from", line, m.Destination, m.Destination)
			}
		}
		return fmt.Sprintf("%q: the container's user (--user), a missing capability (--cap-add DAC_OVERRIDE) or a noexec mount (--tmpfs DST:exec); `bulwark explain --profile %s PATH` tells which", line, profile)
	}
	return ""
}

// mountOf is the deepest mount of s holding p.
func mountOf(s *specs.Spec, p string) *specs.Mount {
	var mnt *specs.Mount
	for i, m := range s.Mounts {
		if under(p, m.Destination) && (mnt == nil || len(m.Destination) >= len(mnt.Destination)) {
			mnt = &s.Mounts[i]
		}
	}
	return mnt
}

func memoryLimitBytes(s *specs.Spec) int64 {
	if s.Linux == nil || s.Linux.Resources == nil || s.Linux.Resources.Memory == nil || s.Linux.Resources.Memory.Limit == nil {
		return 0
	}
	return *s.Linux.Resources.Memory.Limit
}

func memoryLimit(s *specs.Spec) string {
	n := memoryLimitBytes(s)
	if n <= 0 {
		return "no limit set"
	}
	return fmt.Sprintf("%dm", n>>20)
}

func suggestMemory(s *specs.Spec) string {
	n := memoryLimitBytes(s) >> 20
	if n <= 0 {
		n = 256
	}
	return fmt.Sprintf("%dm", 2*n)
}

// printHint writes h to w as one hint line.
func printHint(w io.Writer, h string) {
	if h != "" {
		fmt.Fprintln(w, hintPrefix+h)
	}
}
