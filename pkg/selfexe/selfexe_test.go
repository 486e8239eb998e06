package selfexe

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const helperEnv = "BULWARK_SELFEXE_HELPER"

// TestHelperProcess is the payload the tests exec through a view: it reports what it
// sees of itself, then waits for stdin to close so the parent can attack its
// /proc/PID/exe while it runs.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		return
	}
	exe, err := os.Readlink("/proc/self/exe")
	fmt.Printf("EXE=%s ERR=%v\n", exe, err)
	var open []string
	for fd := 3; fd < 3+5; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			open = append(open, strconv.Itoa(fd))
		}
	}
	fmt.Printf("FDS=%s\n", strings.Join(open, ","))
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

func start(t *testing.T, cmd *exec.Cmd) *child {
	t.Helper()
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(func() { c.stdin.Close(); c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

func (c *child) field(t *testing.T, key string) string {
	t.Helper()
	if !c.lines.Scan() {
		t.Fatalf("child exited before reporting %s: %v", key, c.lines.Err())
	}
	v, ok := strings.CutPrefix(c.lines.Text(), key+"=")
	if !ok {
		t.Fatalf("child said %q, want %s=...", c.lines.Text(), key)
	}
	return v
}

func (c *child) finish(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

func hashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func mountinfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// openPathExe is the first half of the CVE-2019-5736 attack: grab the running
// process's exe as an O_PATH descriptor, which stays usable after the process exits.
func openPathExe(t *testing.T, pid int) *os.File {
	t.Helper()
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("O_PATH open of /proc/%d/exe: %v", pid, err)
	}
	return os.NewFile(uintptr(fd), "exe-of-"+strconv.Itoa(pid))
}

func TestCommandDefeatsExeOverwrite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for open_tree/mount_setattr (else the memfd path is tested by TestAttackOnCopy)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := hashFile(t, self)
	mountsBefore := mountinfo(t)

	cmd, f, err := Command("-test.run=^TestHelperProcess$")
	if err != nil {
		t.Fatalf("Command: %v", err)
	}
	if link, _ := os.Readlink(fdPath(f)); strings.HasPrefix(link, "/memfd:") {
		t.Skipf("Open fell back to the memfd copy on this host (%s); covered by TestAttackOnCopy", link)
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}

	// ExtraFiles make exec.Cmd reshuffle low descriptors in the child. They are
	// opened after the view so that they, not the view, hold the low numbers a
	// naive view descriptor would have had.
	var extra []*os.File
	for i := 0; i < 5; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		extra = append(extra, r)
	}
	for _, flag := range []int64{unix.ST_RDONLY, unix.ST_NOSUID, unix.ST_NODEV} {
		if st.Flags&flag == 0 {
			t.Errorf("view's mount flags %#x lack %#x", st.Flags, flag)
		}
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/exe", &want); err != nil {
		t.Fatal(err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		t.Errorf("view is a different file (dev %d ino %d) than our binary (dev %d ino %d): it was copied", got.Dev, got.Ino, want.Dev, want.Ino)
	}
	if int(f.Fd()) < minFd {
		t.Errorf("view descriptor %d is below %d", f.Fd(), minFd)
	}

	cmd.ExtraFiles = extra
	c := start(t, cmd)
	f.Close() // as callers do after Start; the child's exec keeps the view alive

	exe := c.field(t, "EXE")
	if !strings.HasSuffix(exe, "/"+filepath.Base(self)+" ERR=<nil>") {
		t.Errorf("child's /proc/self/exe = %q, want it to name %s", exe, filepath.Base(self))
	}
	if fds := c.field(t, "FDS"); fds != "3,4,5,6,7" {
		t.Errorf("child's descriptors 3..7 = %q, want the 5 ExtraFiles", fds)
	}

	pid := c.cmd.Process.Pid
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || filepath.Base(link) != filepath.Base(self) {
		t.Errorf("readlink /proc/%d/exe = %q, %v; want ps to still see %s", pid, link, err, filepath.Base(self))
	}
	exeFile := openPathExe(t, pid)
	defer exeFile.Close()
	if mountinfo(t) != mountsBefore {
		t.Errorf("the read-only view shows up in our mountinfo; it must stay detached")
	}

	// O_TRUNC reaches the mount's write check before the busy-text check, so it is
	// EROFS even while this test binary (the same inode) is running.
	_, err = os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY|os.O_TRUNC, 0)
	if errno(err) != unix.EROFS {
		t.Errorf("O_WRONLY|O_TRUNC of running child's exe: %v, want EROFS", err)
	}

	c.finish(t)
	for _, flags := range []int{os.O_WRONLY | os.O_TRUNC, os.O_RDWR, os.O_WRONLY} {
		w, err := os.OpenFile(fdPath(exeFile), flags, 0)
		if err == nil {
			w.Close()
			t.Fatalf("reopening the exited child's exe with flags %#x succeeded: host binary writable", flags)
		}
		// Plain O_WRONLY hits ETXTBSY first because this test binary is the
		// same inode and still running; the mount would refuse it regardless.
		if e := errno(err); e != unix.EROFS && !(flags&os.O_TRUNC == 0 && e == unix.ETXTBSY) {
			t.Errorf("reopen with flags %#x: %v, want EROFS", flags, err)
		}
	}
	exeFile.Close()
	if hashFile(t, self) != before {
		t.Fatal("our binary's bytes changed")
	}
	if mountinfo(t) != mountsBefore {
		t.Error("mountinfo changed after the view was released")
	}
}

// TestAttackOnCopy runs the full attack against a copy of the test binary that
// nothing else executes, so no ETXTBSY muddies the result: only the view stands
// between the attacker and the file.
func TestAttackOnCopy(t *testing.T) {
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		view func(path string) (*os.File, error)
		// attack result: the open error, or if the open succeeds the write error
		wantOpen  syscall.Errno
		wantWrite syscall.Errno
		exePrefix string
		needRoot  bool
	}{
		{
			name:      "unprotected exec (control: the attack works)",
			view:      nil,
			exePrefix: "",
		},
		{
			name:      "detached read-only mount",
			view:      openDetached,
			wantOpen:  unix.EROFS,
			needRoot:  true,
			exePrefix: "/bulwark-copy ",
		},
		{
			name:      "sealed memfd",
			view:      openMemfd,
			wantWrite: unix.EPERM,
			exePrefix: "/memfd:bulwark",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needRoot && os.Geteuid() != 0 {
				t.Skip("open_tree needs CAP_SYS_ADMIN")
			}
			target := filepath.Join(t.TempDir(), "bulwark-copy")
			if err := os.WriteFile(target, b, 0o755); err != nil {
				t.Fatal(err)
			}
			before := hashFile(t, target)

			cmd := exec.Command(target, "-test.run=^TestHelperProcess$")
			var view *os.File
			if tc.view != nil {
				if view, err = tc.view(target); err != nil {
					t.Fatalf("making view: %v", err)
				}
				defer view.Close()
				cmd = commandFor(view, []string{"-test.run=^TestHelperProcess$"})
			}
			c := start(t, cmd)
			exe := c.field(t, "EXE")
			c.field(t, "FDS")
			if tc.exePrefix != "" && !strings.HasPrefix(exe, tc.exePrefix) {
				t.Errorf("child's exe = %q, want prefix %q", exe, tc.exePrefix)
			}
			exeFile := openPathExe(t, c.cmd.Process.Pid)
			defer exeFile.Close()
			c.finish(t)
			if view != nil {
				// Protection must not depend on the runtime still holding the view:
				// the attacker waits for us to exit.
				view.Close()
			}

			w, err := os.OpenFile(fdPath(exeFile), os.O_WRONLY, 0)
			if errno(err) != tc.wantOpen || (tc.wantOpen == 0 && err != nil) {
				t.Fatalf("reopen for writing: %v, want errno %v", err, tc.wantOpen)
			}
			if err == nil {
				_, werr := w.Write([]byte("PWNED"))
				w.Close()
				if errno(werr) != tc.wantWrite || (tc.wantWrite == 0 && werr != nil) {
					t.Fatalf("write: %v, want errno %v", werr, tc.wantWrite)
				}
			}
			changed := hashFile(t, target) != before
			if wantChanged := tc.view == nil; changed != wantChanged {
				t.Fatalf("binary changed = %v, want %v", changed, wantChanged)
			}
		})
	}
}

func TestMemfdIsSealedCopy(t *testing.T) {
	f, err := openMemfd("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []int{unix.F_SEAL_SEAL, unix.F_SEAL_SHRINK, unix.F_SEAL_GROW, unix.F_SEAL_WRITE} {
		if seals&s == 0 {
			t.Errorf("seals %#x lack %#x", seals, s)
		}
	}
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("memfd view open flags %#x, %v; want read-only (a writable fd makes execve fail with ETXTBSY)", fl, err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("memfd holds %d bytes that differ from our %d-byte binary", len(got), len(want))
	}
	if err := unix.Ftruncate(int(f.Fd()), 0); err == nil {
		t.Fatal("ftruncate of the memfd view succeeded")
	}
}

// TestDetachedFollowsRunningBinary covers a binary upgraded or removed while the runtime
// runs: the view must be of the file actually running, not whatever now has its name.
func TestDetachedFollowsRunningBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("open_tree needs CAP_SYS_ADMIN")
	}
	src, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, path string) error
	}{
		{"name unchanged", func(*testing.T, string) error { return nil }},
		{"deleted", func(_ *testing.T, p string) error { return os.Remove(p) }},
		{"replaced", func(_ *testing.T, p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.WriteFile(p, []byte("#!/bin/sh\necho new version\n"), 0o755)
		}},
		{"directory shadowed by a mount", func(t *testing.T, p string) error {
			// The name still resolves, without "(deleted)", but to another file.
			dir := filepath.Dir(p)
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
				return fmt.Errorf("mounting tmpfs over %s: %w", dir, err)
			}
			t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
			return os.WriteFile(p, []byte("#!/bin/sh\necho impostor\n"), 0o755)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "bulwark-old")
			if err := os.WriteFile(target, b, 0o755); err != nil {
				t.Fatal(err)
			}
			running := start(t, exec.Command(target, "-test.run=^TestHelperProcess$"))
			running.field(t, "EXE")
			running.field(t, "FDS")
			if err := tc.mutate(t, target); err != nil {
				t.Fatal(err)
			}
			magic := fmt.Sprintf("/proc/%d/exe", running.cmd.Process.Pid)
			var want unix.Stat_t
			if err := unix.Stat(magic, &want); err != nil {
				t.Fatal(err)
			}

			view, err := openDetached(magic)
			if err != nil {
				t.Fatalf("openDetached(%s): %v", magic, err)
			}
			defer view.Close()
			var got unix.Stat_t
			if err := unix.Fstat(int(view.Fd()), &got); err != nil {
				t.Fatal(err)
			}
			if got.Dev != want.Dev || got.Ino != want.Ino {
				t.Fatalf("view is ino %d, the running binary is ino %d", got.Ino, want.Ino)
			}
			c := start(t, commandFor(view, []string{"-test.run=^TestHelperProcess$"}))
			c.field(t, "EXE")
			exe := openPathExe(t, c.cmd.Process.Pid)
			defer exe.Close()
			c.finish(t)
			running.finish(t)
			view.Close()
			if _, err := os.OpenFile(fdPath(exe), os.O_WRONLY, 0); errno(err) != unix.EROFS {
				t.Fatalf("reopen for writing: %v, want EROFS", err)
			}
		})
	}
}
