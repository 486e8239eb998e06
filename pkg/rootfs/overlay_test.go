package rootfs

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", "/plain": "/plain", `/t\011x\134`: "/t\tx\\"} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// An engine's rootfs is an overlay, which the kernel cannot idmap; the
// overlay RelayerOverlay builds over idmapped clones of its layers shows
// the files with their on-disk owners shifted, writes into the same upper
// directory, and keeps the engine's mount as it was.
func TestRelayerOverlayIdmapsAnEnginesOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	d, err := os.MkdirTemp("", "relayer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(d)
	os.Chmod(d, 0o755) // the container's root only traverses it
	for _, s := range []string{"l1", "l2", "c/diff", "c/work", "merged", "ours"} {
		if err := os.MkdirAll(filepath.Join(d, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(d, "l1", "sub"), 0o755)
	os.WriteFile(filepath.Join(d, "l1", "f"), []byte("x"), 0o644)
	os.Chown(filepath.Join(d, "l1", "f"), 1000, 1000)
	os.WriteFile(filepath.Join(d, "l2", "g"), []byte("y"), 0o644)
	merged := filepath.Join(d, "merged")
	opts := "lowerdir=" + filepath.Join(d, "l2") + ":" + filepath.Join(d, "l1") + ",upperdir=" + filepath.Join(d, "c/diff") + ",workdir=" + filepath.Join(d, "c/work") + ",index=off"
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlayfs: %v", err)
	}
	defer unix.Unmount(merged, unix.MNT_DETACH)
	if !IsOverlayMount(merged) || IsOverlayMount(d) {
		t.Fatalf("IsOverlayMount: merged %v, its parent %v", IsOverlayMount(merged), IsOverlayMount(d))
	}
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
	tree, err := RelayerOverlay(merged, m, m, unix.MOUNT_ATTR_NOSUID)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	ours := filepath.Join(d, "ours")
	if err := unix.MoveMount(int(tree.Fd()), "", unix.AT_FDCWD, ours, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(ours, unix.MNT_DETACH)
	for name, want := range map[string]uint32{"f": 301000, "g": 300000} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(ours, name), &st); err != nil || st.Uid != want {
			t.Errorf("%s: uid %d (%v), want %d through the idmapped layers", name, st.Uid, err, want)
		}
	}
	// A write as the container's root (host uid 300000) lands on disk as uid 0.
	done := make(chan error)
	go func() {
		// setfsuid is per thread: a locked thread that ends with the goroutine.
		runtimeLockOSThread()
		unix.Setfsgid(300000)
		unix.Setfsuid(300000)
		if err := os.WriteFile(filepath.Join(ours, "new"), []byte("z"), 0o644); err != nil {
			done <- err
			return
		}
		// A lower layer's file changed: copied up into the upper directory.
		done <- os.WriteFile(filepath.Join(ours, "g"), []byte("changed"), 0o644)
	}()
	if err := <-done; err != nil {
		t.Fatalf("write as the container's root: %v", err)
	}
	for _, name := range []string{"new", "g"} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(d, "c/diff", name), &st); err != nil || st.Uid != 0 {
			t.Errorf("%s written by the container's root: on disk uid %d (%v), want 0 in the upper directory", name, st.Uid, err)
		}
	}
	// The engine still writes through its own mount (docker cp does, as
	// host root), also where that copies up a lower directory: the engine's
	// work directory must have survived the second mount.
	if err := os.WriteFile(filepath.Join(merged, "sub", "copied"), []byte("c"), 0o644); err != nil {
		t.Errorf("writing through the engine's overlay after the second mount: %v", err)
	} else if u := ownerOf(t, filepath.Join(d, "c/diff/sub/copied")); u != 0 {
		t.Errorf("file the engine wrote: on disk uid %d, want 0", u)
	}
	var mi []byte
	if mi, err = os.ReadFile("/proc/self/mountinfo"); err != nil || !strings.Contains(string(mi), merged) {
		t.Errorf("the engine's overlay at %s is gone", merged)
	}
	if _, err := overlayAt(filepath.Join(d, "c")); err != nil {
		t.Errorf("overlayAt on a plain directory: %v", err)
	}
}

func runtimeLockOSThread() { runtime.LockOSThread() }

func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid
}
