package vmagent

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// maxProcs and maxCommand keep a ps answer within one frame however many
// processes the payload forks and however long their command lines.
const (
	maxProcs   = 4096
	maxCommand = 512
)

// guestProcs lists the guest's processes from its /proc: the agent (1),
// the payload and what it started, exec'd processes. Kernel threads (the
// children of kthreadd, 2, and kthreadd itself) are not the container's.
func guestProcs(proc string) []vmproto.Proc {
	ds, _ := os.ReadDir(proc)
	var out []vmproto.Proc
	for _, d := range ds {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || len(out) >= maxProcs {
			continue
		}
		p, ok := readProc(filepath.Join(proc, d.Name()), pid)
		if ok && p.PID != 2 && p.PPID != 2 {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// readProc reads one process's stat, status and cmdline; a process that
// ended meanwhile is skipped.
func readProc(dir string, pid int) (vmproto.Proc, bool) {
	stat, err := procstat.ReadFile(filepath.Join(dir, "stat"))
	if err != nil || stat.Field(4) == "" {
		return vmproto.Proc{}, false
	}
	p := vmproto.Proc{PID: pid, State: stat.Field(3), UID: -1}
	p.PPID, _ = strconv.Atoi(stat.Field(4))
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					p.UID, _ = strconv.Atoi(f[0])
				}
			}
		}
	}
	cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	cmd = bytes.TrimRight(cmd, "\x00")
	if len(cmd) == 0 {
		p.Command = "[" + stat.Comm() + "]"
	} else {
		p.Command = string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))
	}
	if len(p.Command) > maxCommand {
		p.Command = p.Command[:maxCommand]
	}
	return p, true
}
