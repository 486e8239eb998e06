package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnprivilegedOptionsListTheTopLayerFirst(t *testing.T) {
	base := t.TempDir()
	l0, l1 := filepath.Join(base, "l0"), filepath.Join(base, "l1")
	for _, d := range []string{l0, l1} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(base, "snap")
	rootfs, opts, err := Unprivileged([]string{l0, l1}, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "lowerdir=" + l1 + ":" + l0 + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work"
	if opts != want || rootfs != dir+"/rootfs" {
		t.Errorf("got %q %q, want %q", rootfs, opts, want)
	}
	if _, _, err := Unprivileged([]string{l0}, filepath.Join(base, "a,b")); err == nil || !strings.Contains(err.Error(), "--data-root") {
		t.Errorf("a comma in a path: %v, want refused", err)
	}
}

func TestMergedFilesFollowsWhiteoutsAndOpaqueDirs(t *testing.T) {
	write := func(p, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		setup func(l0, l1 string)
		want  string // "" for no file
	}{
		{"top layer wins", func(l0, l1 string) { write(l0+"/etc/passwd", "low"); write(l1+"/etc/passwd", "high") }, "high"},
		{"lower layer shows through", func(l0, l1 string) { write(l0+"/etc/passwd", "low"); write(l1+"/etc/other", "x") }, "low"},
		{"whiteout hides", func(l0, l1 string) {
			write(l0+"/etc/passwd", "low")
			if err := os.MkdirAll(l1+"/etc", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mknod(l1+"/etc/passwd", unix.S_IFCHR, 0); err != nil {
				t.Skipf("mknod whiteout: %v", err)
			}
		}, ""},
		{"opaque dir hides", func(l0, l1 string) {
			write(l0+"/etc/passwd", "low")
			write(l1+"/etc/other", "x")
			if err := unix.Setxattr(l1+"/etc", "user.overlay.opaque", []byte("y"), 0); err != nil {
				t.Skipf("user xattr: %v", err)
			}
		}, ""},
		{"symlink is not followed", func(l0, l1 string) {
			write(l0+"/etc/passwd", "low")
			if err := os.MkdirAll(l1+"/etc", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/shadow", l1+"/etc/passwd"); err != nil {
				t.Fatal(err)
			}
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			l0, l1, dst := filepath.Join(base, "l0"), filepath.Join(base, "l1"), filepath.Join(base, "dst")
			for _, d := range []string{l0, l1} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			c.setup(l0, l1)
			if err := MergedFiles([]string{l0, l1}, dst, "etc/passwd"); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dst, "etc/passwd"))
			if got := string(b); (err != nil && c.want != "") || got != c.want {
				t.Errorf("got %q (%v), want %q", got, err, c.want)
			}
		})
	}
}
