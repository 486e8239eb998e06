// Package procstat reads a process's /proc/PID/stat, the one place the
// runtime learns a pid's start time (to tell a process from a later one of
// the same number), state, parent and group.
//
// The threat: the second field, the command name, is the process's own
// choice (its executable's name, prctl PR_SET_NAME) and may hold spaces
// and parentheses. A parser that splits the line on spaces reads what a
// container's process wrote there as the fields after it: a start time
// that makes a pid Bulwark recorded look alive, or a group it does not
// belong to. The fields here are read after the last ')', which the name
// cannot move.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Stat is one /proc/PID/stat line: the command name and the fields after it.
type Stat struct {
	comm  string
	after []string
}

// Read reads /proc/PID/stat.
func Read(pid int) (Stat, error) {
	return ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
}

// ReadFile reads a stat file by its path (a /proc entry named otherwise
// than by a number, another mount of proc).
func ReadFile(path string) (Stat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	s, ok := Parse(b)
	if !ok {
		return Stat{}, fmt.Errorf("%s: malformed", path)
	}
	return s, nil
}

// Parse splits a stat line: "PID (COMM) STATE PPID ...".
func Parse(b []byte) (Stat, bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, false
	}
	after := strings.Fields(string(b[end+1:]))
	if len(after) == 0 {
		return Stat{}, false
	}
	return Stat{string(b[open+1 : end]), after}, true
}

// Comm is field 2 without its parentheses: the process's own choice of
// name, to be shown, never parsed.
func (s Stat) Comm() string { return s.comm }

// Field returns field n as proc(5) numbers them from 1 (3 the state, 4
// the parent, 5 the process group, 14 and 15 the user and system time,
// 22 the start time), or "" when the line is shorter. Fields 1 and 2 are
// the pid and the command name, which Stat does not keep.
func (s Stat) Field(n int) string {
	if i := n - 3; i >= 0 && i < len(s.after) {
		return s.after[i]
	}
	return ""
}

// Uint returns field n as a number.
func (s Stat) Uint(n int) (uint64, error) {
	f := s.Field(n)
	if f == "" {
		return 0, fmt.Errorf("stat has no field %d", n)
	}
	return strconv.ParseUint(f, 10, 64)
}

// StartTime is field 22: when the process started, in clock ticks since
// boot. A pid and its start time name one process for good.
func (s Stat) StartTime() (uint64, error) { return s.Uint(22) }

// CPUTime is fields 14 and 15, the user and system time so far.
func (s Stat) CPUTime() (time.Duration, error) {
	ut, err := s.Uint(14)
	if err != nil {
		return 0, err
	}
	st, err := s.Uint(15)
	if err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * (time.Second / userHZ), nil
}

// userHZ is the unit of the clock-tick fields (the kernel's USER_HZ,
// sysconf(_SC_CLK_TCK)): 100 on x86 and arm64.
const userHZ = 100

// State is field 3's letter (R, S, D, Z, X, ...).
func (s Stat) State() byte {
	if f := s.Field(3); f != "" {
		return f[0]
	}
	return 0
}

// Dead reports a zombie or a process being reaped: it holds nothing any
// more but its pid.
func (s Stat) Dead() bool { st := s.State(); return st == 'Z' || st == 'X' }
