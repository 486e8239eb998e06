package snapshot

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
)

type E = imagetest.Entry

func layers(t *testing.T) []string {
	t.Helper()
	base := t.TempDir()
	var dirs []string
	for i, ents := range [][]E{
		{{Name: "etc/", Type: tar.TypeDir}, {Name: "etc/gone", Body: "x"}, {Name: "etc/kept", Body: "lower"},
			{Name: "var/", Type: tar.TypeDir}, {Name: "var/old", Body: "o"}},
		{{Name: "etc/.wh.gone"}, {Name: "var/.wh..wh..opq"}, {Name: "var/new", Body: "n"}},
	} {
		d := filepath.Join(base, string(rune('a'+i)))
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := unpack.Unpack(bytes.NewReader(imagetest.Tar(t, ents...)), d, unpack.Options{Privileged: true}); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

func owner(t *testing.T, p string) uint32 {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}

func TestSnapshotIdmappedLowers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs and idmapped layers needs root")
	}
	ls := layers(t)
	for _, tc := range []struct {
		name string
		m    *IDMap
		uid  uint32
	}{
		{"idmapped", &IDMap{HostID: 300000, Size: 65536}, 300000},
		{"unmapped", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Reachable by the container's root, as the data root is.
			base := t.TempDir()
			for _, d := range []string{base, filepath.Dir(base)} {
				if err := os.Chmod(d, 0o711); err != nil {
					t.Fatal(err)
				}
			}
			dir := filepath.Join(base, "snap")
			rootfs, err := Mount(ls, dir, tc.m)
			if err != nil {
				if tc.m != nil && (err == unix.EINVAL || bytes.Contains([]byte(err.Error()), []byte("lowerdir+"))) {
					t.Skipf("kernel lacks overlay layers by fd or idmapped lowers: %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Unmount(rootfs) })
			if _, err := os.Lstat(filepath.Join(rootfs, "etc/gone")); !os.IsNotExist(err) {
				t.Errorf("whiteout: etc/gone is visible (%v)", err)
			}
			if _, err := os.Lstat(filepath.Join(rootfs, "var/old")); !os.IsNotExist(err) {
				t.Errorf("opaque dir: var/old is visible (%v)", err)
			}
			if fi, err := os.Stat(rootfs); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("merged root mode %v, %v; want the layer's 0755", fi.Mode(), err)
			}
			if got := owner(t, filepath.Join(rootfs, "etc/kept")); got != tc.uid {
				t.Errorf("etc/kept owner %d, want %d", got, tc.uid)
			}
			// The container's root writes: copy-up and a new file, in upper only.
			c := exec.Command("sh", "-c", "echo more >> etc/kept && echo y > etc/new")
			c.Dir = rootfs
			c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: tc.uid, Gid: tc.uid}}
			if out, err := c.CombinedOutput(); err != nil {
				t.Fatalf("write as the container's root: %v: %s", err, out)
			}
			if b, _ := os.ReadFile(filepath.Join(ls[0], "etc/kept")); string(b) != "lower" {
				t.Errorf("the shared layer changed: %q", b)
			}
			if got := owner(t, filepath.Join(dir, "upper/etc/new")); got != tc.uid {
				t.Errorf("upper etc/new owner %d, want %d", got, tc.uid)
			}
			if err := Unmount(rootfs); err != nil {
				t.Fatal(err)
			}
			if err := Unmount(rootfs); err != nil {
				t.Errorf("second unmount: %v", err)
			}
		})
	}
}
