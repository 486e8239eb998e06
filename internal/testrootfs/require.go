package testrootfs

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// RequireBinary skips the test unless name is on PATH, and returns its path.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// RequireUserNS skips the test unless this host lets us create a user
// namespace. It asks the kernel by doing it (sysctls, LSM policy and
// seccomp can each forbid it, and only the attempt sees all three).
func RequireUserNS(t testing.TB) {
	t.Helper()
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	if err := cmd.Run(); err != nil {
		t.Skipf("user namespaces unavailable: %v", err)
	}
}

// RequireLandlock skips the test unless Landlock is enabled with at least
// ABI version minABI, and returns the ABI version.
func RequireLandlock(t testing.TB, minABI int) int {
	t.Helper()
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		t.Skipf("Landlock unavailable: %v", errno)
	}
	if int(v) < minABI {
		t.Skipf("Landlock ABI %d < %d", v, minABI)
	}
	return int(v)
}

// RequireCgroupV2Controller skips the test unless a cgroup2 hierarchy is
// mounted with controller name available at its root.
func RequireCgroupV2Controller(t testing.TB, name string) {
	t.Helper()
	for _, m := range cgroupMounts() {
		if m.fstype != "cgroup2" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.mountpoint, "cgroup.controllers"))
		if err == nil && hasWord(string(b), name) {
			return
		}
	}
	t.Skipf("no cgroup v2 hierarchy offers the %s controller", name)
}

// RequireCgroupV1Controller skips the test unless a v1 hierarchy with
// controller name is mounted (hybrid and legacy hosts).
func RequireCgroupV1Controller(t testing.TB, name string) {
	t.Helper()
	for _, m := range cgroupMounts() {
		if m.fstype == "cgroup" && hasWord(strings.ReplaceAll(m.superopts, ",", " "), name) {
			return
		}
	}
	t.Skipf("no cgroup v1 hierarchy with the %s controller is mounted", name)
}

type mountInfo struct{ mountpoint, fstype, superopts string }

func cgroupMounts() []mountInfo {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var ms []mountInfo
	s := bufio.NewScanner(f)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 || !strings.HasPrefix(b[0], "cgroup") {
			continue
		}
		ms = append(ms, mountInfo{mountpoint: a[4], fstype: b[0], superopts: b[2]})
	}
	return ms
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
