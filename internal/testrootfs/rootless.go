package testrootfs

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RootlessUser is a host account the rootless tests run Bulwark as.
type RootlessUser struct {
	Name     string
	UID, GID int
}

// The tests' accounts: system users (no home, no login shell, and no
// subordinate ids of their own from useradd), made once and reused by
// every run; the one with ranges gets a fixed range far above the ids
// Debian hands out and above pkg/userns's pool.
const (
	rootlessUserName = "bulwark-rootless"
	// The user-mode network tests' account: their relays and keepers are
	// processes of its own, which the other rootless tests' checks for
	// leftovers (run by another process at the same time) never see.
	rootlessNetUserName = "bulwark-rootnet"
	noSubIDsUserName    = "bulwark-nosubids"
	RootlessSubStart    = 1300000000
	RootlessSubCount    = 65536
)

// RequireRootlessUser returns the test account with subordinate uid and
// gid ranges in /etc/subuid and /etc/subgid, making it (useradd, usermod
// --add-subuids) when it is missing and skipping when that cannot be done
// (no shadow tools, no newuidmap). Idempotent and safe across concurrent
// test processes (a file lock).
func RequireRootlessUser(t testing.TB) RootlessUser {
	t.Helper()
	RequireRoot(t)
	RequireBinary(t, "newuidmap")
	RequireBinary(t, "newgidmap")
	u, err := ensureUser(rootlessUserName, true)
	if err != nil {
		t.Skipf("rootless test user: %v", err)
	}
	return u
}

// RequireRootlessNetUser is RequireRootlessUser for the user-mode network
// tests: another account, with the range after the first one's.
func RequireRootlessNetUser(t testing.TB) RootlessUser {
	t.Helper()
	RequireRoot(t)
	RequireBinary(t, "newuidmap")
	RequireBinary(t, "newgidmap")
	u, err := ensureUserRange(rootlessNetUserName, true, RootlessSubStart+RootlessSubCount)
	if err != nil {
		t.Skipf("rootless test user: %v", err)
	}
	return u
}

// RequireUserWithoutSubIDs returns a test account with no line in
// /etc/subuid or /etc/subgid.
func RequireUserWithoutSubIDs(t testing.TB) RootlessUser {
	t.Helper()
	RequireRoot(t)
	u, err := ensureUser(noSubIDsUserName, false)
	if err != nil {
		t.Skipf("test user without subordinate ids: %v", err)
	}
	return u
}

func ensureUser(name string, subIDs bool) (RootlessUser, error) {
	return ensureUserRange(name, subIDs, RootlessSubStart)
}

func ensureUserRange(name string, subIDs bool, subStart int) (RootlessUser, error) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "bulwark-rootless-user.lock"), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return RootlessUser{}, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return RootlessUser{}, err
	}
	if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput()
		if err != nil {
			return RootlessUser{}, fmt.Errorf("useradd %s: %v: %s", name, err, out)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return RootlessUser{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	want := fmt.Sprintf("%s:%d:%d", name, subStart, RootlessSubCount)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		lines := subIDLines(f, name)
		switch {
		case subIDs && len(lines) == 1 && lines[0] == want:
		case subIDs:
			// Whatever else is there for this account was not ours to
			// choose: replace it with the known range.
			if err := rewriteSubIDs(f, name, want); err != nil {
				return RootlessUser{}, err
			}
		case len(lines) > 0:
			if err := rewriteSubIDs(f, name, ""); err != nil {
				return RootlessUser{}, err
			}
		}
	}
	return RootlessUser{Name: name, UID: uid, GID: gid}, nil
}

func subIDLines(path, name string) []string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+":") {
			out = append(out, l)
		}
	}
	return out
}

// rewriteSubIDs replaces the account's lines in path by line ("" drops
// them), keeping every other line, atomically.
func rewriteSubIDs(path, name, line string) error {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, name+":") {
			keep = append(keep, l)
		}
	}
	if line != "" {
		keep = append(keep, line)
	}
	tmp := path + ".bulwark-test"
	if err := os.WriteFile(tmp, []byte(strings.Join(keep, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// UserDir makes a directory owned by u (mode 0700) under a parent any user
// may traverse, removed at the end of the test: a home, a runtime
// directory or a rootfs for a rootless run (t.TempDir's parents are 0700
// and root's).
func UserDir(t testing.TB, u RootlessUser) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "bulwark-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// UserRootfs builds the test rootfs (Build) in a directory owned by u,
// every file chowned to u: the rootfs a rootless person keeps, whose
// files are root's in the container.
func UserRootfs(t testing.TB, u RootlessUser) string {
	t.Helper()
	dir := filepath.Join(UserDir(t, u), "rootfs")
	if err := Build(dir); err != nil {
		t.Fatal(err)
	}
	if err := ChownTree(dir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ChownTree gives every file under dir (dir included, symlinks not
// followed) to uid:gid.
func ChownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}
