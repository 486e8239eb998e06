package snapshot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Copy keeps owners, modes with set-user-id bits, symlinks (unfollowed)
// and hard links, and leaves device nodes out.
func TestCopyKeepsOwnersModesLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners and device nodes need root")
	}
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "rootfs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(src, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(src, "bin/su"), []byte("x"), 0o755))
	must(os.Chown(filepath.Join(src, "bin/su"), 0, 5))
	must(os.Chmod(filepath.Join(src, "bin/su"), 0o4755|os.ModeSetuid))
	must(os.Link(filepath.Join(src, "bin/su"), filepath.Join(src, "bin/su2")))
	must(os.Symlink("/etc/shadow", filepath.Join(src, "escape")))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(Copy(src, dst))
	var st unix.Stat_t
	must(unix.Lstat(filepath.Join(dst, "bin/su"), &st))
	if st.Mode&0o7777 != 0o4755 || st.Gid != 5 || st.Nlink != 2 {
		t.Errorf("bin/su mode %#o gid %d nlink %d, want 04755, 5, 2", st.Mode&0o7777, st.Gid, st.Nlink)
	}
	if l, err := os.Readlink(filepath.Join(dst, "escape")); err != nil || l != "/etc/shadow" {
		t.Errorf("symlink %q %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "null")); err == nil {
		t.Error("a device node was copied")
	}
	if err := Copy(src, dst); err == nil {
		t.Error("Copy over an existing directory succeeded")
	}
}
