package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// wantResolved checks that the lookup of rel succeeded and that the kernel
// holds want as the handle's path; it closes f.
func wantResolved(t *testing.T, f *os.File, err error, rel, want string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	got, err := fdPath(f)
	f.Close()
	if err != nil || got != want {
		t.Errorf("%s resolved to %q (%v), want %q", rel, got, err, want)
	}
}

// openInRoot must keep every lookup inside the rootfs, with the kernel's
// openat2 and with the pathrs fallback for kernels that lack it.
func TestOpenInRootStaysInsideTheRootfs(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"etc", "dev"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"abs": "/etc", "up": "../../../../etc", "dangling": "/nowhere"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()

	for _, kernel := range []string{"openat2", "no openat2"} {
		t.Run(kernel, func(t *testing.T) {
			if kernel == "no openat2" {
				openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
				t.Cleanup(func() { openat2 = unix.Openat2 })
			}
			for _, tc := range []struct {
				rel   string
				flags uint64
				want  string // the resolved host path, relative to root; "" for an error
				err   error
			}{
				{"/etc/passwd", 0, "etc/passwd", nil},
				{"/abs/passwd", 0, "etc/passwd", nil},
				{"/up/passwd", 0, "etc/passwd", nil},
				{"/../../etc/passwd", 0, "etc/passwd", nil},
				{"/dev", unix.O_DIRECTORY, "dev", nil},
				{"/etc/passwd", unix.O_DIRECTORY, "", unix.ENOTDIR},
				{"/dangling", 0, "", os.ErrNotExist},
				{"/missing/x", 0, "", os.ErrNotExist},
			} {
				f, err := openInRoot(rootF, tc.rel, tc.flags)
				if tc.err != nil {
					if !errors.Is(err, tc.err) {
						t.Errorf("%s: got %v, want %v", tc.rel, err, tc.err)
					}
					if f != nil {
						f.Close()
					}
					continue
				}
				wantResolved(t, f, err, tc.rel, filepath.Join(root, tc.want))
			}
		})
	}
}

func TestDirInRootCreatesInsideTheRootfs(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/made/by/link", filepath.Join(root, "dev/dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(root, "up")); err != nil {
		t.Fatal(err)
	}
	rootF, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer rootF.Close()
	mt := &mounter{root: rootF, rootfs: root}
	for _, tc := range []struct{ rel, want string }{
		{"/dev", "dev"},                   // exists
		{"/dev/pts", "dev/pts"},           // last component missing: mkdirat
		{"/a/b/c", "a/b/c"},               // parents missing: pathrs
		{"/up/escaped", "escaped"},        // ".." through a symlink stays in root
		{"/dev/../dev/./shm/", "dev/shm"}, // unclean
	} {
		f, err := mt.dirInRoot(tc.rel)
		wantResolved(t, f, err, tc.rel, filepath.Join(root, tc.want))
		if fi, err := os.Lstat(filepath.Join(root, tc.want)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %s is not a directory: %v", tc.rel, tc.want, err)
		}
	}
	// A dangling symlink is refused (pathrs does not create through one),
	// and nothing appears at its target either.
	if f, err := mt.dirInRoot("/dev/dangling"); err == nil {
		f.Close()
		t.Error("/dev/dangling: created through a dangling symlink")
	}
	if _, err := os.Lstat(filepath.Join(root, "made")); err == nil {
		t.Error("the dangling symlink's target was created")
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(root), "escaped")); err == nil {
		t.Error("a directory was created outside the rootfs")
	}
}
