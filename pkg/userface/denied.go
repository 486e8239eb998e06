package userface

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/killlog"
)

// denialLog is --log-denied: a line on stderr per call the container's
// seccomp filter refused. The filter is loaded with SECCOMP_FILTER_FLAG_LOG,
// so the kernel writes an audit record (type=1326) for every action but
// allow, errno included; this reads them from /dev/kmsg while the
// container runs and names the call and the rule that can have refused it.
// Calls let through cost nothing more: the kernel logs only the others.
type denialLog struct {
	w       *killlog.Watch
	rt      *container.Runtime
	id      string
	sc      *specs.LinuxSeccomp
	reasons []string
	profile string
	out     io.Writer
	stopc   chan struct{}
	done    chan struct{}
	pidNS   string // the container's pid namespace, once known
}

// logDenied asks s's filter to log every refusal; start begins reading
// the log. The rules are named with the profile's reasons (a built-in's,
// or a learned file's).
func logDenied(rt *container.Runtime, id string, s *specs.Spec, profile string) (*denialLog, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil, fmt.Errorf("--log-denied: this profile has no seccomp filter, so nothing is denied by one")
	}
	sc := s.Linux.Seccomp
	_, reasons := builtinSeccomp(sc)
	if reasons == nil {
		reasons = learnedReasons(profile)
	}
	if !slices.Contains(sc.Flags, specs.LinuxSeccompFlagLog) {
		sc.Flags = append(sc.Flags, specs.LinuxSeccompFlagLog)
	}
	return &denialLog{rt: rt, id: id, sc: sc, reasons: reasons, profile: profile, out: os.Stderr}, nil
}

func (d *denialLog) start() error {
	w, err := killlog.Start()
	if err != nil {
		return fmt.Errorf("--log-denied: reading the kernel's log (/dev/kmsg needs root, or kernel.dmesg_restrict=0): %w", err)
	}
	d.w, d.stopc, d.done = w, make(chan struct{}), make(chan struct{})
	go d.follow()
	return nil
}

func (d *denialLog) follow() {
	defer close(d.done)
	for {
		stopping := false
		select {
		case <-d.stopc:
			stopping = true
		default:
		}
		recs, _ := d.w.Decisions()
		for _, r := range recs {
			if r.Denied() {
				fmt.Fprintln(d.out, d.line(r))
			}
		}
		if stopping {
			if d.w.Suppressed > 0 {
				fmt.Fprintf(d.out, "bulwark: --log-denied: the kernel's log dropped %d seccomp records meanwhile (printk's rate limit: without auditd about 10 per 5 s get through); denials may be missing above\n", d.w.Suppressed)
			}
			return
		}
		d.w.Wait(100 * time.Millisecond)
	}
}

// stop prints what is left in the log and ends the reading.
func (d *denialLog) stop() {
	if d == nil || d.w == nil {
		return
	}
	// The kernel writes a record at the call; the last ones may still be
	// in the audit queue when the container exits.
	time.Sleep(20 * time.Millisecond)
	close(d.stopc)
	<-d.done
	d.w.Close()
	d.w = nil
}

// line is "bulwark: denied: NAME by pid N (COMM): OUTCOME, RULE", and says
// so when the process is gone before it could be checked to be the
// container's (the record holds a host pid and no container).
func (d *denialLog) line(r killlog.Decision) string {
	name := r.Name
	if name == "" {
		name = "syscall " + strconv.Itoa(r.Syscall)
	}
	how, by := deniedBy(d.sc, d.reasons, d.profile, r.Name, r.Code)
	who := fmt.Sprintf("pid %d (%s)", r.PID, r.Comm)
	switch d.ours(r.PID) {
	case notOurs:
		return fmt.Sprintf("bulwark: denied (another container's or the host's): %s by %s: %s", name, who, how)
	case gone:
		who += ", gone before it could be checked to be this container's"
	}
	return fmt.Sprintf("bulwark: denied: %s by %s: %s, %s", name, who, how, by)
}

const (
	ours = iota
	notOurs
	gone
)

// ours compares pid's pid namespace with the container init's.
func (d *denialLog) ours(pid int) int {
	if d.pidNS == "" {
		if st, err := d.rt.Load(d.id); err == nil && st.Pid > 0 {
			d.pidNS, _ = os.Readlink("/proc/" + strconv.Itoa(st.Pid) + "/ns/pid")
		}
	}
	ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	switch {
	case err != nil || d.pidNS == "":
		return gone
	case ns == d.pidNS:
		return ours
	}
	return notOurs
}

// actionOf is the action a rule gives, as the kernel's record has it: the
// action alone (SECCOMP_RET_ACTION_FULL), never its errno.
func actionOf(a specs.LinuxSeccompAction) (uint32, bool) {
	switch a {
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO, true
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, true
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, true
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, true
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE, true
	}
	return 0, false
}

// deniedBy says how name was refused and by which rules of sc: those
// whose action is the record's. The record has the call's number but
// neither its arguments nor the errno, so where rules with argument
// conditions could also have answered, they are named too, and the errno
// is each candidate's.
func deniedBy(sc *specs.LinuxSeccomp, reasons []string, profile, name string, code uint32) (how, by string) {
	action := code & unix.SECCOMP_RET_ACTION_FULL
	var conds []string
	var errnos []string
	addErrno := func(a specs.LinuxSeccompAction, ret *uint) {
		if a != specs.ActErrno {
			return
		}
		e := uint(unix.EPERM)
		if ret != nil {
			e = *ret
		}
		n := unix.ErrnoName(unix.Errno(e))
		if n == "" {
			n = "errno " + strconv.FormatUint(uint64(e), 10)
		}
		if !slices.Contains(errnos, n) {
			errnos = append(errnos, n)
		}
	}
	condRules := false
	for i, r := range sc.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		condRules = condRules || len(r.Args) > 0
		if a, ok := actionOf(r.Action); !ok || a != action {
			continue
		}
		reason := ""
		if i < len(reasons) && reasons[i] != "" {
			reason = ": " + reasons[i]
		}
		if len(r.Args) == 0 {
			// libseccomp lets an unconditional rule decide whatever
			// the arguments.
			addErrno(r.Action, r.ErrnoRet)
			return refusal(action, errnos), fmt.Sprintf("by rule #%d%s", i, reason)
		}
		addErrno(r.Action, r.ErrnoRet)
		cs := make([]string, len(r.Args))
		for k, a := range r.Args {
			cs[k] = explain.Cond(a)
		}
		conds = append(conds, fmt.Sprintf("#%d %s", i, strings.Join(cs, " && ")))
	}
	var parts []string
	if a, ok := actionOf(sc.DefaultAction); ok && a == action {
		addErrno(sc.DefaultAction, sc.DefaultErrnoRet)
		if condRules {
			parts = append(parts, "the default action (no rule for its arguments)")
		} else {
			parts = append(parts, "the default action: no rule allows "+name)
		}
	}
	switch {
	case len(conds) == 0 && len(parts) == 0:
		if name == "clone3" && action == unix.SECCOMP_RET_ERRNO {
			return refusal(action, []string{"ENOSYS"}), "by Bulwark's clone3 rule (its flags are out of seccomp's reach; libc falls back to clone)"
		}
		return refusal(action, nil), "by no rule of this profile (another filter on the process?)"
	case len(conds) == 0:
		return refusal(action, errnos), "by " + parts[0]
	case len(conds) == 1:
		parts = append(parts, "rule "+conds[0])
	case len(conds) > 3:
		parts = append(parts, fmt.Sprintf("one of %d rules on its arguments (%s, ...)", len(conds), strings.Join(conds[:3], ", ")))
	default:
		parts = append(parts, fmt.Sprintf("one of %d rules on its arguments (%s)", len(conds), strings.Join(conds, ", ")))
	}
	return refusal(action, errnos), "by " + strings.Join(parts, " or ") + fmt.Sprintf("; the kernel's record has no arguments: `bulwark seccomp explain %s %s ARGS...` tells which", profile, name)
}

// refusal is the outcome of the record's action, with the errnos the
// candidate rules give.
func refusal(action uint32, errnos []string) string {
	switch action {
	case unix.SECCOMP_RET_ERRNO:
		if len(errnos) == 0 {
			return "refused with an errno"
		}
		return "refused with " + strings.Join(errnos, " or ")
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "killed the process (SIGSYS)"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "killed the thread (SIGSYS)"
	case unix.SECCOMP_RET_TRAP:
		return "raised SIGSYS"
	case unix.SECCOMP_RET_TRACE:
		return "handed to a tracer"
	}
	return fmt.Sprintf("action %#x", action)
}
