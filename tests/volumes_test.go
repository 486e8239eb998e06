package tests

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// volumeDir is a host directory owned by uid:gid, mode perm, as a person
// would give to -v.
func volumeDir(t *testing.T, uid, gid int, perm os.FileMode) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hostOwner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func TestVolumeOwnerIsContainerRootAndKeepsWhatRootWrites(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := volumeDir(t, 4242, 4243, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "old"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "old"), 4242, 4243); err != nil {
		t.Fatal(err)
	}
	r := e.userRun(nil, []string{"-v", dir + ":/data"}, rootfs, "sh", "-c",
		`stat -c '%u:%g' /data /data/old && cat /data/old && echo new > /data/new && stat -c '%u:%g' /data/new`)
	if r.code != 0 || r.stdout != "0:0\n0:0\nfrom the host\n0:0\n" {
		t.Fatalf("want the volume and its files owned by container root and writable by it, got %v", r)
	}
	if uid, gid := hostOwner(t, filepath.Join(dir, "new")); uid != 4242 || gid != 4243 {
		t.Errorf("a file container root wrote is %d:%d on the host, want the directory owner's 4242:4243", uid, gid)
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
}

func TestReadOnlyVolumeStaysReadOnly(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := volumeDir(t, 4242, 4242, 0o755)
	r := e.userRun(nil, []string{"-v", dir + ":/data:ro"}, rootfs, "sh", "-c",
		`stat -c '%u' /data; echo x > /data/f && echo wrote`)
	if r.code == 0 || r.stdout != "0\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("want /data root's and the write refused with EROFS, got %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err == nil {
		t.Error("a read-only volume was written")
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
}

// A directory of host root is not shifted: container root must never
// create files as host root (a setuid one would be host root's).
func TestVolumeOfHostRootNeverWritesAsHostRoot(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := volumeDir(t, 0, 0, 0o777)
	r := e.userRun(nil, []string{"-v", dir + ":/data"}, rootfs, "sh", "-c",
		`stat -c '%u' /data; echo x > /data/f`)
	if r.code != 0 || r.stdout != "65534\n" {
		t.Fatalf("want a host root directory to appear as nobody's and stay writable by its mode, got %v", r)
	}
	if uid, gid := hostOwner(t, filepath.Join(dir, "f")); uid == 0 || gid == 0 {
		t.Errorf("container root wrote a file owned by host %d:%d", uid, gid)
	}
}

func TestNoidmapVolumeKeepsHostOwnership(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := volumeDir(t, 4242, 4242, 0o755)
	r := e.userRun(nil, []string{"-v", dir + ":/data:noidmap"}, rootfs, "sh", "-c",
		`stat -c '%u' /data; echo x > /data/f`)
	if r.code == 0 || r.stdout != "65534\n" {
		t.Errorf("want /data nobody's and not writable by container root, got %v", r)
	}
}

func TestUsernsRangeOverlappingThePoolOrALiveContainerIsRefused(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	r := e.userRun(nil, []string{"--userns-range", "200000"}, rootfs, "true")
	if r.code == 0 || !strings.Contains(r.stderr, `--userns-range "200000"`) || !strings.Contains(r.stderr, "pool") {
		t.Errorf("want a range inside the pool refused naming the flag and the pool, got %v", r)
	}
	const far = "3000000000"
	_, out, stop := e.startUserRun([]string{"--userns-range", far}, rootfs, "sh", "-c", "echo up; read x")
	if line, err := out.ReadString('\n'); err != nil || line != "up\n" {
		t.Fatalf("first container: %q %v", line, err)
	}
	holder := e.ids[len(e.ids)-1]
	r = e.userRun(nil, []string{"--userns-range", "3000060000:1000"}, rootfs, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--userns-range") || !strings.Contains(r.stderr, holder) {
		t.Errorf("want a range overlapping the live container %s refused naming it, got %v", holder, r)
	}
	stop()
	r = e.userRun(nil, []string{"--userns-range", "3000060000:1000"}, rootfs, "true")
	if r.code != 0 {
		t.Errorf("once the container is gone its range is free again, got %v", r)
	}
}

// This kernel idmaps ext4, xfs, btrfs and tmpfs, not overlayfs: a volume
// there is refused by name, with the way to bind it unshifted.
func TestVolumeOnAFilesystemTheKernelCannotIdmapIsRefusedByName(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	base := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(base, "m")
	if err := syscall.Mount("overlay", mnt, "overlay", 0,
		"lowerdir="+filepath.Join(base, "l")+",upperdir="+filepath.Join(base, "u")+",workdir="+filepath.Join(base, "w")); err != nil {
		t.Skipf("no overlayfs to try: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	if err := os.Chown(mnt, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	r := e.userRun(nil, []string{"-v", mnt + ":/data"}, rootfs, "true")
	if r.code == 0 {
		t.Skipf("this kernel idmaps overlayfs: %v", r)
	}
	if !strings.Contains(r.stderr, "--volume "+mnt+":/data") || !strings.Contains(r.stderr, "overlayfs") || !strings.Contains(r.stderr, ":noidmap") {
		t.Errorf("want the refusal to name the volume, its filesystem and :noidmap, got %v", r)
	}
	id := e.ids[len(e.ids)-1]
	e.assertUserRunGone(id)
	assertNoLeftovers(t, id)
	r = e.userRun(nil, []string{"-v", mnt + ":/data:noidmap"}, rootfs, "stat", "-c", "%u", "/data")
	if r.code != 0 || r.stdout != "65534\n" {
		t.Errorf("want :noidmap to bind it as it is, got %v", r)
	}
}

// idmap= pins a container user to a host user: the files it writes keep
// that owner from one container (and range) to the next.
func TestVolumeIdmapOptionPinsAContainerUserToAHostUser(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := volumeDir(t, 4242, 4242, 0o755)
	flags := []string{"--user", "1000:1000", "-v", dir + ":/data:idmap=1000-4242-1"}
	r := e.userRun(nil, flags, rootfs, "sh", "-c", `stat -c '%u:%g' /data && echo one > /data/f`)
	if r.code != 0 || r.stdout != "1000:1000\n" {
		t.Fatalf("want the volume owned by container user 1000 and writable by it, got %v", r)
	}
	if uid, gid := hostOwner(t, filepath.Join(dir, "f")); uid != 4242 || gid != 4242 {
		t.Errorf("a file container user 1000 wrote is %d:%d on the host, want 4242:4242", uid, gid)
	}
	r = e.userRun(nil, flags, rootfs, "sh", "-c", `stat -c '%u' /data/f && echo two >> /data/f && cat /data/f`)
	if r.code != 0 || r.stdout != "1000\none\ntwo\n" {
		t.Errorf("want the next container's user 1000 to own and append to the file, got %v", r)
	}
	r = e.userRun(nil, []string{"-v", dir + ":/data:idmap=0-150000-1"}, rootfs, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--volume "+dir+":/data:idmap=0-150000-1") || !strings.Contains(r.stderr, "pool") {
		t.Errorf("want host ids of the pool refused naming the volume, got %v", r)
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
}
