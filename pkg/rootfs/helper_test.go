package rootfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The scenario tests re-exec the test binary into fresh namespaces: mount
// namespaces can only be entered by a whole (single-threaded at clone time)
// process, and the namespace, with every mount made in it, dies with that
// process, so nothing can leak onto the host.
const (
	envScenario = "BULWARK_ROOTFS_SCENARIO"
	envWork     = "BULWARK_ROOTFS_WORK"
	resultTag   = "BULWARK-RESULT:"
	usernsBase  = 100000
)

// testEnv names the host-side paths of one scenario run; the child derives
// the same values from envWork, so spec builders are plain functions.
type testEnv struct {
	work   string // temp dir on the host
	rootfs string // work/rootfs
}

func newTestEnv(work string) *testEnv {
	return &testEnv{work: work, rootfs: filepath.Join(work, "rootfs")}
}

func (e *testEnv) path(p string) string { return filepath.Join(e.work, p) }

type scenario struct {
	name       string
	userns     bool
	cloneFlags uintptr // beyond CLONE_NEWNS (and the user-namespace set)
	opts       Options
	noPivot    bool
	skip       func() string
	hostSetup  func(e *testEnv) error // host side, before the child starts
	childSetup func(e *testEnv) error // in the child's namespace, before Prepare
	spec       func(e *testEnv) *specs.Spec
	prePivot   func(c *checker, e *testEnv) // after Prepare, still seeing the host tree
	check      func(c *checker, e *testEnv) // after Pivot and Finish, inside the container
	// wantPrepareErr: Prepare must fail with an error containing this.
	wantPrepareErr string
	hostCheck      func(t *testing.T, e *testEnv)
}

// checker collects failed expectations in the child; the parent turns
// them into test failures.
type checker struct {
	Failures []string          `json:"failures"`
	Facts    map[string]string `json:"facts"`
}

func (c *checker) errorf(format string, a ...any) {
	c.Failures = append(c.Failures, fmt.Sprintf(format, a...))
}

func (c *checker) fact(k, v string) {
	if c.Facts == nil {
		c.Facts = map[string]string{}
	}
	c.Facts[k] = v
}

// topMount is the visible (last-mounted) mount at exactly path p.
func topMount(p string) *mountinfo.Info {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p))
	if err != nil || len(ms) == 0 {
		return nil
	}
	// SingleEntryFilter stops at the first; re-read all for stacked mounts.
	all, _ := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) { return i.Mountpoint != p, false })
	if len(all) > 0 {
		return all[len(all)-1]
	}
	return ms[0]
}

func (c *checker) wantFSType(p, fstype string) {
	m := topMount(p)
	if m == nil {
		c.errorf("%s: not a mount point, want %s", p, fstype)
		return
	}
	if m.FSType != fstype {
		c.errorf("%s: fstype %q, want %q", p, m.FSType, fstype)
	}
}

func (c *checker) wantNotMount(p string) {
	if m := topMount(p); m != nil {
		c.errorf("%s: unexpectedly a %s mount point", p, m.FSType)
	}
}

func (c *checker) wantOpt(p, opt string) {
	m := topMount(p)
	if m == nil {
		c.errorf("%s: not a mount point (want option %s)", p, opt)
		return
	}
	for _, o := range strings.Split(m.Options, ",") {
		if o == opt {
			return
		}
	}
	c.errorf("%s: mount options %q lack %q", p, m.Options, opt)
}

// wantWriteErr creates a file in dir (or opens a file for writing) and
// expects errno.
func (c *checker) wantWriteErr(p string, want error) {
	var err error
	if fi, serr := os.Stat(p); serr == nil && fi.IsDir() {
		var f *os.File
		f, err = os.Create(filepath.Join(p, ".bulwark-write-probe"))
		if err == nil {
			f.Close()
		}
	} else {
		err = os.WriteFile(p, []byte("x"), 0o644)
	}
	if !errors.Is(err, want) {
		c.errorf("write to %s: got %v, want %v", p, err, want)
	}
}

func (c *checker) wantWriteOK(p string) {
	f, err := os.Create(filepath.Join(p, ".bulwark-write-probe"))
	if err != nil {
		c.errorf("write in %s: %v, want success", p, err)
		return
	}
	f.Close()
}

func (c *checker) wantDevice(p string, typ uint32, major, minor uint32, perm uint32) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		c.errorf("device %s: %v", p, err)
		return
	}
	if st.Mode&unix.S_IFMT != typ {
		c.errorf("device %s: type %#o, want %#o", p, st.Mode&unix.S_IFMT, typ)
	}
	if unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor {
		c.errorf("device %s: %d:%d, want %d:%d", p, unix.Major(st.Rdev), unix.Minor(st.Rdev), major, minor)
	}
	if perm != 0 && st.Mode&0o7777 != perm {
		c.errorf("device %s: mode %#o, want %#o", p, st.Mode&0o7777, perm)
	}
}

func (c *checker) wantSymlink(p, target string) {
	got, err := os.Readlink(p)
	if err != nil || got != target {
		c.errorf("symlink %s: got %q (%v), want -> %q", p, got, err, target)
	}
}

func (c *checker) wantEmpty(p string) {
	b, err := os.ReadFile(p)
	if err != nil || len(b) != 0 {
		c.errorf("%s: want empty read, got %d bytes (%v)", p, len(b), err)
	}
}

func (c *checker) wantEmptyDir(p string) {
	ents, err := os.ReadDir(p)
	if err != nil || len(ents) != 0 {
		c.errorf("%s: want empty directory, got %d entries (%v)", p, len(ents), err)
	}
}

func (c *checker) wantMissing(p string) {
	if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
		c.errorf("%s: want ENOENT, got %v", p, err)
	}
}

// TestHelperProcess is the child side; it does nothing unless started by
// runScenario.
func TestHelperProcess(t *testing.T) {
	name := os.Getenv(envScenario)
	if name == "" {
		t.Skip("helper process for the scenario tests")
	}
	var c checker
	func() {
		sc, ok := scenarioByName(name)
		if !ok {
			c.errorf("unknown scenario %q", name)
			return
		}
		e := newTestEnv(os.Getenv(envWork))
		if sc.childSetup != nil {
			if err := sc.childSetup(e); err != nil {
				c.errorf("child setup: %v", err)
				return
			}
		}
		s := sc.spec(e)
		err := Prepare(s, e.rootfs, sc.opts)
		if sc.wantPrepareErr != "" {
			if err == nil || !strings.Contains(err.Error(), sc.wantPrepareErr) {
				c.errorf("Prepare: got error %v, want one containing %q", err, sc.wantPrepareErr)
			}
			c.fact("prepare_error", fmt.Sprint(err))
			if sc.prePivot != nil {
				sc.prePivot(&c, e)
			}
			return
		}
		if err != nil {
			c.errorf("Prepare: %v", err)
			return
		}
		if sc.prePivot != nil {
			sc.prePivot(&c, e)
		}
		if err := Pivot(e.rootfs, sc.noPivot); err != nil {
			c.errorf("Pivot: %v", err)
			return
		}
		if err := Finish(s); err != nil {
			c.errorf("Finish: %v", err)
			return
		}
		if sc.check != nil {
			sc.check(&c, e)
		}
	}()
	out, _ := json.Marshal(c)
	fmt.Println(resultTag + string(out))
	os.Exit(0)
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildRootfs makes a minimal busybox rootfs: enough to prove the tree is
// usable (a shell runs) without depending on any image.
func buildRootfs(t *testing.T, e *testEnv) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(e.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(filepath.Join(e.rootfs, "bin/busybox"), "/bin/busybox", 0o755); err != nil {
		t.Fatalf("copying busybox into the test rootfs (install busybox-static): %v", err)
	}
	if err := os.Symlink("busybox", filepath.Join(e.rootfs, "bin/sh")); err != nil {
		t.Fatal(err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts, pivot_root and mknod are real")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (Debian busybox-static) for the test rootfs")
	}
}

// hostMountsUnder lists host mounts below dir; a scenario must never
// leave any.
func hostMountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), dir) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func runScenario(t *testing.T, sc scenario) {
	requireRoot(t)
	if sc.skip != nil {
		if why := sc.skip(); why != "" {
			t.Skip(why)
		}
	}
	work, err := os.MkdirTemp("", "bulwark-rootfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if leaks := hostMountsUnder(work); len(leaks) > 0 {
			t.Errorf("mounts leaked onto the host:\n%s", strings.Join(leaks, "\n"))
		}
		if err := os.RemoveAll(work); err != nil {
			t.Errorf("removing %s: %v", work, err)
		}
	})
	// Container root in a user namespace has no rights over unmapped
	// (host-root-owned) files, so the work dir must be traversable.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(work)
	buildRootfs(t, e)
	if sc.hostSetup != nil {
		if err := sc.hostSetup(e); err != nil {
			t.Fatalf("host setup: %v", err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | sc.cloneFlags, Pdeathsig: syscall.SIGKILL}
	if sc.userns {
		// The go build cache dir is 0700 root; the mapped root cannot
		// exec from it.
		helper := e.path("helper.test")
		if err := copyFile(helper, exe, 0o755); err != nil {
			t.Fatal(err)
		}
		exe = helper
		if err := filepath.Walk(e.rootfs, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, usernsBase, usernsBase)
		}); err != nil {
			t.Fatal(err)
		}
		attr.Cloneflags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: usernsBase, Size: 65536}}
		// Without switching to the mapped root before execve the child
		// would run as the overflow uid and lose every capability.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envScenario+"="+sc.name, envWork+"="+work)
	cmd.SysProcAttr = attr
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process for %q failed: %v\n%s", sc.name, err, out)
	}
	var res checker
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, resultTag); ok {
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("bad result line %q: %v", line, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("helper process for %q printed no result:\n%s", sc.name, out)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
	if len(res.Facts) > 0 {
		t.Logf("facts: %v", res.Facts)
	}
	if sc.hostCheck != nil {
		sc.hostCheck(t, e)
	}
}
