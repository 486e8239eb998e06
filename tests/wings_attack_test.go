package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/floorns"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

// Attacks on the wings built around the namespace core (the image store,
// VM isolation, networks), each by a party the wing must hold off: here
// another user of the host. docs/escape.md, "The wings".

// asNobody runs argv as uid and gid 65534 with no supplementary groups: a
// local user with no business in anyone's containers.
func asNobody(t *testing.T, argv ...string) (string, error) {
	t.Helper()
	c := exec.Command(argv[0], argv[1:]...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := c.CombinedOutput()
	return string(out), err
}

// TestAnotherUserCannotReachARunningContainersSnapshot: a container run
// from an image has its overlay mounted under the data root
// (containers/ID-HASH/rootfs), which must be traversable by the
// container's mapped root. Another local user who learns the id (ps shows
// it) and computes the directory's name must not get through it: not
// read what the container wrote, not plant files in its world-writable
// directories, not run its set-user-id binaries (which run as the
// container root's host uid) — Docker's CVE-2021-41091.
func TestAnotherUserCannotReachARunningContainersSnapshot(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:peek")
	t.Setenv("BULWARK_DATA_ROOT", dr)
	_, out, stop := e.startUserRun([]string{"--user", "0", "--writable"}, "example.com/busy:peek",
		"sh", "-c", "echo s3cret > /etc/container-secret && chmod 644 /etc/container-secret && mkdir -m 1777 /shared && echo ready; read x")
	defer stop()
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	ents, err := os.ReadDir(filepath.Join(dr, "containers"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("snapshots: %v %v", ents, err)
	}
	rootfs := filepath.Join(dr, "containers", ents[0].Name(), "rootfs")
	if b, err := os.ReadFile(filepath.Join(rootfs, "etc/container-secret")); err != nil || string(b) != "s3cret\n" {
		t.Fatalf("the test's own look at the snapshot: %q %v", b, err)
	}
	o, err := asNobody(t, "/bin/cat", filepath.Join(rootfs, "etc/container-secret"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user read the running container's file: err=%v output %q", err, o)
	}
	o, err = asNobody(t, "/bin/sh", "-c", "echo planted > "+filepath.Join(rootfs, "shared/planted"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user planted a file in the running container: err=%v output %q", err, o)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "shared/planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("planted file in the container's rootfs: %v", err)
	}
}

// TestAnotherUserCannotOpenAContainersPrivateDeviceNode: a device given to
// a user-namespaced container (--device, the rawdisk and gpu profiles) is a
// node the runtime makes under /dev/bulwark/HASH (HASH from --root and the
// id any user sees in ps), owned by the container's root and bound in. The
// container's root owns that inode, so it can chmod it 0666 from inside;
// another local user (a second account of the same attacker, or anyone the
// container hands the name to) must still not reach it on the host, or the
// raw disk the container was given is theirs to read and write.
func TestAnotherUserCannotOpenAContainersPrivateDeviceNode(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dev := loopDevice(t, "BWDISK-UNTOUCHED")
	_, out, stop := e.startUserRun([]string{"--profile", "rawdisk", "--device", dev}, rootfs,
		"sh", "-c", "chmod 666 "+dev+" && stat -c %a "+dev+" && read x")
	defer stop()
	if line, err := out.ReadString('\n'); err != nil || line != "666\n" {
		t.Fatalf("the container did not start or could not chmod its node: %q %v", line, err)
	}
	node := filepath.Join(userface.PathsOf(e.root, e.ids[len(e.ids)-1]).Dev, "0")
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil || st.Rdev == 0 {
		t.Fatalf("the test's own look at the container's node %s: %v", node, err)
	}
	o, err := asNobody(t, "/bin/sh", "-c", "echo PLANTED > "+node)
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user wrote the container's disk through %s: err=%v output %q", node, err, o)
	}
	o, err = asNobody(t, "/usr/bin/head", "-c", "16", node)
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user read the container's disk through %s: err=%v output %q", node, err, o)
	}
	b, err := exec.Command("head", "-c", "16", dev).Output()
	if err != nil || string(b) != "BWDISK-UNTOUCHED" {
		t.Errorf("the disk's first bytes: %q %v", b, err)
	}
}

// TestAnotherUserCannotReachAFloorContainersIdmappedRootfs: under the
// floor an engine's container gets its rootfs and volumes bound under
// /run/bulwark-floor/HASH, where HASH comes from the state directory (the
// engine's, with the container id any user sees in ps). The engine keeps
// its own overlay below root-only directories; the floor's bind must not
// be a way around them for another local user.
func TestAnotherUserCannotReachAFloorContainersIdmappedRootfs(t *testing.T) {
	merged, _ := engineOverlay(t)
	// What the engine's image and the container put there: a file
	// anyone may read and a directory anyone may write, as /var/tmp is.
	if err := os.WriteFile(filepath.Join(merged, "container-secret"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(merged, "shared"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(merged, "shared"), 0o777|os.ModeSticky)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.WriteFile(filepath.Join(vol, "data"), []byte("volume-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		dockerShaped(s)
		s.Root.Path = merged
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", "rw"}})
	})
	id := e.id()
	if r := e.bw("--harden", "--policy", emptyPolicy(t), "run", "-d", "-b", bundle, id); r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	defer e.bw("delete", "--force", id)
	idmap := floorns.IdmapDir((&container.Runtime{Root: e.root}).StateDir(id))
	rootfs := filepath.Join(idmap, "rootfs")
	// The engine's overlay itself is out of the other user's reach (as
	// /var/lib/docker is): only the floor's bind could lead in.
	if err := os.Chmod(filepath.Dir(merged), 0o700); err != nil {
		t.Fatal(err)
	}
	o, err := asNobody(t, "/bin/cat", filepath.Join(rootfs, "container-secret"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user read the running container's file through the floor's bind: err=%v output %q", err, o)
	}
	o, err = asNobody(t, "/bin/sh", "-c", "echo planted > "+filepath.Join(rootfs, "shared/planted"))
	if err == nil || !strings.Contains(o, "Permission denied") {
		t.Errorf("another user planted a file in the running container through the floor's bind: err=%v output %q", err, o)
	}
	ents, _ := os.ReadDir(idmap)
	for _, en := range ents {
		if en.Name() == "rootfs" || !en.IsDir() {
			continue
		}
		o, err = asNobody(t, "/bin/cat", filepath.Join(idmap, en.Name(), "data"))
		if err == nil || !strings.Contains(o, "Permission denied") {
			t.Errorf("another user read the container's volume through %s: err=%v output %q", en.Name(), err, o)
		}
	}
}

// TestContainerRootCannotPlantSetIDFilesThroughAnIdmappedMount: a
// --writable rootfs and a -v volume are host directories the container
// writes through an idmapped mount, which stores what its root makes as
// owned by the directory's owner: host root for the rootfs, the volume's
// owner for the volume. Their host paths must be traversable by the
// container's unprivileged root, so by other local users too: a
// set-user-id copy of a program planted there ran as host root (euid 0
// for nobody) before the refusal. Every way of giving a file those bits
// is tried; each must fail with EPERM and leave no set-id file on the
// host, while ordinary modes still work.
func TestContainerRootCannotPlantSetIDFilesThroughAnIdmappedMount(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	vol := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(vol, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	script := `for d in / /vol/; do
  cp /bin/busybox ${d}p-chmod && chmod 755 ${d}p-chmod && echo "$d plain=ok"
  chmod 4755 ${d}p-chmod 2>&1; echo "$d chmod-suid=$?"
  chmod g+s ${d}p-chmod 2>&1; echo "$d chmod-sgid=$?"
  echo "$d open=$(syscall createmode ${d}p-open 0o4755)"
  echo "$d mknod=$(syscall mknod ${d}p-mknod 'S_IFREG|0o4000')"
  echo "$d open-plain=$(syscall createmode ${d}p-plain 0o644)"
done`
	r := e.userRun(nil, []string{"--writable", "-v", vol + ":/vol"}, rootfs, "sh", "-c", script)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	for _, d := range []string{"/", "/vol/"} {
		for _, want := range []string{"plain=ok", "chmod-suid=1", "chmod-sgid=1", "open=EPERM", "mknod=EPERM", "open-plain=OK"} {
			if !strings.Contains(r.stdout, d+" "+want+"\n") {
				t.Errorf("in %s: want %q in the output: %s", d, want, r.stdout)
			}
		}
	}
	for _, dir := range []string{rootfs, vol} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range ents {
			if !strings.HasPrefix(en.Name(), "p-") {
				continue
			}
			p := filepath.Join(dir, en.Name())
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
				o, _ := asNobody(t, p, "id", "-u")
				t.Errorf("%s on the host is mode %o, owner %d; run by nobody it reports euid %q", p, st.Mode&0o7777, st.Uid, strings.TrimSpace(o))
			}
		}
	}
}
