package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

type cleanState struct {
	containers, cgroups, mounts []string
	procs                       int
}

func (c cleanState) ok() bool {
	return len(c.containers)+len(c.cgroups)+len(c.mounts)+c.procs == 0
}

// cleanup removes what the runs may have left and then checks the host:
// containers in our state roots, cgroups under our parent in every
// hierarchy, mounts under the work dir, processes below us.
func (b *bench) cleanup() cleanState {
	var c cleanState
	for _, rt := range b.rts {
		ents, _ := os.ReadDir(rt.root)
		for _, e := range ents {
			if e.IsDir() && strings.Contains(e.Name(), b.tag) {
				run(b.work, b.cmd(rt, "delete", "-f", e.Name())...)
			}
		}
	}
	reapOrphans()
	for _, rt := range b.rts {
		o, _ := exec.Command(rt.bin, "--root", rt.root, "list", "-q").Output()
		for _, id := range strings.Fields(string(o)) {
			c.containers = append(c.containers, rt.name+":"+id)
		}
	}
	// Runtimes remove the container's own cgroup but not the parent we
	// gave them; remove it leaf first, in every v1 hierarchy and in cgroup2.
	tops, _ := filepath.Glob("/sys/fs/cgroup/*" + b.cgParent)
	if st, err := os.Stat("/sys/fs/cgroup" + b.cgParent); err == nil && st.IsDir() {
		tops = append(tops, "/sys/fs/cgroup"+b.cgParent)
	}
	for _, top := range tops {
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
	// Also catch a runtime that ignored the absolute path and named the
	// cgroup after the container somewhere else.
	for _, pat := range []string{"/sys/fs/cgroup/*" + b.cgParent, "/sys/fs/cgroup" + b.cgParent,
		"/sys/fs/cgroup/*/*bb-" + b.tag + "*", "/sys/fs/cgroup/*/*/*bb-" + b.tag + "*"} {
		m, _ := filepath.Glob(pat)
		c.cgroups = append(c.cgroups, m...)
	}
	if b.stateTmpfs {
		// Every container is gone from the state roots by now (listed
		// above); the tmpfs holding them goes too.
		if err := syscall.Unmount(b.stateBase, 0); err == nil {
			b.stateTmpfs = false
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, b.work) || strings.Contains(l, b.stateBase) || strings.Contains(l, "bb-"+b.tag) {
			c.mounts = append(c.mounts, l)
		}
	}
	c.procs = len(descendants(os.Getpid()))
	if len(c.mounts) == 0 {
		os.RemoveAll(b.work)
		if b.stateBase != b.work {
			os.RemoveAll(b.stateBase)
		}
	}
	return c
}
