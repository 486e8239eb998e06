// Package daemontest holds the host-state helpers of the test suites that
// start their own container daemons (tests/engines: dockerd, podman,
// containerd; tests/cri: containerd's CRI): waiting, stopping a daemon,
// and finding and removing what it left mounted or in the cgroup trees
// (tests/ checks its own containers' cgroups with LeftoverCgroups too).
//
// The threat it answers is a test run that leaves the host changed: a
// daemon's overlay mounts or cgroups outliving it would make the next
// run's "nothing left behind" checks lie. Do not use it outside tests: it
// unmounts and deletes whatever lies below the directory it is given.
package daemontest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WaitFor polls cond every 100 ms for up to d (and once more at the end);
// it reports whether cond held.
func WaitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// MountsUnder lists mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// RemoveAll unmounts what a daemon left mounted below dir (overlay layers,
// shm, netns files, its own bind mounts) and deletes dir.
func RemoveAll(dir string) error {
	for range 3 {
		ms := MountsUnder(dir)
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	return os.RemoveAll(dir)
}

// StopProcess sends SIGTERM, waits up to grace, then SIGKILL; pid 0 is
// ignored.
func StopProcess(pid int, grace time.Duration) {
	if pid <= 0 || unix.Kill(pid, unix.SIGTERM) != nil {
		return
	}
	if !WaitFor(grace, func() bool { return unix.Kill(pid, 0) != nil }) {
		unix.Kill(pid, unix.SIGKILL)
		WaitFor(5*time.Second, func() bool { return unix.Kill(pid, 0) != nil })
	}
}

// LeftoverCgroups lists cgroup directories whose name contains id, on
// every hierarchy: what a container must not leave behind.
func LeftoverCgroups(id string) []string {
	var found []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipDir
		}
		if d.IsDir() && strings.Contains(d.Name(), id) {
			found = append(found, p)
		}
		if strings.Count(p, "/") > 7 {
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// VMMissing says why this host cannot boot a VM container (a daemon's
// bulwark-vm runtime): no QEMU or no guest kernel, with what installs
// them; "" when it can.
func VMMissing() string {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "qemu-system-x86_64 not installed (scripts/install-vm.sh): " + err.Error()
	}
	if ks, _ := filepath.Glob("/boot/vmlinuz-*"); len(ks) == 0 && os.Getenv("BULWARK_VM_KERNEL") == "" {
		return "no guest kernel in /boot (scripts/install-vm.sh installs linux-image-amd64)"
	}
	return ""
}

// QEMUProcesses lists the /proc directories of the QEMU processes running
// now: the suites boot VMs only under the host's QEMU lock, so any is one
// of theirs, and one left after a container's removal is a leak.
func QEMUProcesses() []string {
	var out []string
	ps, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(b), "qemu-system") {
			continue
		}
		out = append(out, filepath.Dir(p))
	}
	return out
}
