// Package sched applies the process's scheduling attributes the config asks
// for: process.scheduler (sched_setattr), process.ioPriority (ioprio_set),
// linux.memoryPolicy (set_mempolicy) and CPU affinity (the caller's reset,
// process.execCPUAffinity). It also parses the kernel's list format
// ("0-3,7") those fields use, so that validation and application read a
// field the same way.
//
// Threat: a container that silently inherits the runtime's own placement
// (a shim pinned to one housekeeping CPU, a real-time or idle policy, an I/O
// class) runs where and how the config did not ask, and a config's
// attribute that is accepted but not applied lets the payload compete for
// CPU, I/O or NUMA memory its operator meant to bound. Each attribute is
// applied or the start fails naming the field.
//
// Every attribute here belongs to a thread: Apply and the affinity calls act
// on the thread that will execve the payload, which keeps them across
// execve.
package sched

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxCPU bounds the CPU and node numbers a list may name: the kernel's
// largest NR_CPUS (and far above MAX_NUMNODES), so a number above it is a
// typo, not a machine.
const maxCPU = 8192

// ParseList reads the kernel's list format, "0-3,7", into a mask. Empty
// is an empty mask.
func ParseList(s string) (unix.CPUSetDynamic, error) {
	set := unix.NewCPUSet(maxCPU)
	if strings.TrimSpace(s) == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := number(lo)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = number(hi); err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			if b < a {
				return nil, fmt.Errorf("%q: range %s runs backwards", s, part)
			}
		}
		for i := a; i <= b; i++ {
			set.Set(i)
		}
	}
	return set, nil
}

func number(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a CPU or node number", s)
	}
	if n >= maxCPU {
		return 0, fmt.Errorf("%d is above the largest CPU or node number (%d)", n, maxCPU-1)
	}
	return n, nil
}

var policies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10,
	specs.SchedFlagUtilClampMin: 0x20, specs.SchedFlagUtilClampMax: 0x40,
}

// Attr is process.scheduler as sched_setattr(2) takes it.
func Attr(s *specs.Scheduler) (*unix.SchedAttr, error) {
	policy, ok := policies[s.Policy]
	if !ok {
		return nil, fmt.Errorf("unknown policy %q", s.Policy)
	}
	var flags uint64
	for _, f := range s.Flags {
		bit, ok := schedFlags[f]
		if !ok {
			return nil, fmt.Errorf("unknown flag %q", f)
		}
		flags |= bit
	}
	return &unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: policy, Flags: flags, Nice: s.Nice,
		Priority: uint32(s.Priority), Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}, nil
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// The kernel's memory policy modes and mode flags (linux/mempolicy.h).
var (
	memModes = map[specs.MemoryPolicyModeType]int{
		specs.MpolDefault: 0, specs.MpolPreferred: 1, specs.MpolBind: 2, specs.MpolInterleave: 3,
		specs.MpolLocal: 4, specs.MpolPreferredMany: 5, specs.MpolWeightedInterleave: 6,
	}
	memFlags = map[specs.MemoryPolicyFlagType]int{
		specs.MpolFStaticNodes: 1 << 15, specs.MpolFRelativeNodes: 1 << 14, specs.MpolFNumaBalancing: 1 << 13,
	}
)

// MemoryPolicyModes and MemoryPolicyFlags are the names linux.memoryPolicy
// may use, for `features`.
func MemoryPolicyModes() []string { return names(memModes) }

// MemoryPolicyFlags: see MemoryPolicyModes.
func MemoryPolicyFlags() []string { return names(memFlags) }

func names[K ~string, V any](m map[K]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

// MemoryPolicy is linux.memoryPolicy as set_mempolicy(2) takes it, checked
// as the kernel would check the node count for the mode. The error names
// the subfield ("mode", "nodes", "flags[1]") and what is wrong with it, with
// runc's words in it ("invalid memory policy mode", "mode requires 0 nodes
// but got 8"), which scripts and runc's own tests match.
func MemoryPolicy(mp *specs.LinuxMemoryPolicy) (mode int, nodes unix.CPUSetDynamic, field string, err error) {
	mode, ok := memModes[mp.Mode]
	if !ok {
		return 0, nil, "mode", fmt.Errorf("invalid memory policy mode %q (known: %s)", mp.Mode, strings.Join(MemoryPolicyModes(), ", "))
	}
	if nodes, err = ParseList(mp.Nodes); err != nil {
		return 0, nil, "nodes", fmt.Errorf("invalid memory policy node: %w", err)
	}
	switch n := nodes.Count(); mp.Mode {
	case specs.MpolDefault, specs.MpolLocal:
		if n != 0 {
			return 0, nil, "nodes", fmt.Errorf("%s takes no nodes: mode requires 0 nodes but got %d (%q)", mp.Mode, n, mp.Nodes)
		}
	case specs.MpolBind, specs.MpolInterleave, specs.MpolPreferredMany, specs.MpolWeightedInterleave:
		if n == 0 {
			return 0, nil, "nodes", fmt.Errorf("%s needs at least one node", mp.Mode)
		}
	}
	for i, f := range mp.Flags {
		bit, ok := memFlags[f]
		if !ok {
			return 0, nil, fmt.Sprintf("flags[%d]", i), fmt.Errorf("invalid memory policy flag %q (known: %s)", f, strings.Join(MemoryPolicyFlags(), ", "))
		}
		mode |= bit
	}
	return mode, nodes, "", nil
}

// FieldError is a failure to apply one field ("process.scheduler").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Apply sets p's scheduler and I/O priority and mp (may be nil) on the
// calling thread. It runs while the thread is still privileged: a
// real-time policy or class needs CAP_SYS_NICE or CAP_SYS_ADMIN.
func Apply(p *specs.Process, mp *specs.LinuxMemoryPolicy) error {
	if p != nil && p.Scheduler != nil {
		attr, err := Attr(p.Scheduler)
		if err == nil {
			err = unix.SchedSetAttr(0, attr, 0)
		}
		if err != nil {
			return &FieldError{"process.scheduler", fmt.Errorf("sched_setattr: %w", err)}
		}
	}
	if p != nil && p.IOPriority != nil {
		class, ok := ioClasses[p.IOPriority.Class]
		if !ok {
			return &FieldError{"process.ioPriority.class", fmt.Errorf("unknown class %q", p.IOPriority.Class)}
		}
		const whoProcess = 1 // IOPRIO_WHO_PROCESS; 0 is the calling thread
		prio := class<<13 | p.IOPriority.Priority
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); e != 0 {
			return &FieldError{"process.ioPriority", fmt.Errorf("ioprio_set: %w", e)}
		}
	}
	if mp != nil {
		mode, nodes, field, err := MemoryPolicy(mp)
		if err == nil {
			if err = unix.SetMemPolicyDynamic(mode, nodes); err != nil {
				err = fmt.Errorf("set_mempolicy: %w", err)
			}
		}
		if err != nil {
			return &FieldError{strings.TrimSuffix("linux.memoryPolicy."+field, "."), err}
		}
	}
	return nil
}

// ResetAffinity lets thread tid run on every CPU its cpuset allows, as runc
// does for a container's processes: otherwise they inherit whatever CPU the
// runtime's caller was pinned to. The kernel narrows the full mask to the
// thread's cpuset (and remembers the rest for when the cpuset grows).
func ResetAffinity(tid int) error {
	all := unix.NewCPUSet(maxCPU)
	all.Fill()
	if err := unix.SchedSetaffinityDynamic(tid, all); err != nil {
		return fmt.Errorf("resetting the CPU affinity of %d: %w", tid, err)
	}
	return nil
}

// SetAffinity pins thread tid (0: the caller) to list.
func SetAffinity(tid int, list string) error {
	set, err := ParseList(list)
	if err != nil {
		return err
	}
	if set.Count() == 0 {
		return errors.New("empty CPU list")
	}
	if err := unix.SchedSetaffinityDynamic(tid, set); err != nil {
		return fmt.Errorf("sched_setaffinity %s: %w", list, err)
	}
	return nil
}
