package tests

// fuse-overlayfs: a rootless image run whose snapshot the kernel's
// overlayfs will not mount (or that asks with --storage-driver
// fuse-overlayfs) gets it from Debian's fuse-overlayfs, serving a FUSE
// connection the container's init mounted in its own namespaces. These
// tests prove it runs images with their owners, that the daemon ends with
// the container however it ends, that a missing binary is named, and that
// the daemon cannot be used to reach the host's files.

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// fuseImage loads into the account's store an image of busybox, a
// marker, a file to be whited out, and a directory and file of uid 1000.
func fuseImage(t *testing.T, r *rootlessEnv) string {
	t.Helper()
	testrootfs.RequireBinary(t, "fuse-overlayfs")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	return rootlessImage(t, r)
}

// rootlessImage is fuseImage's image, without asking for fuse-overlayfs.
func rootlessImage(t *testing.T, r *rootlessEnv) string {
	t.Helper()
	mid := imagetest.Layer(t, "gzip",
		imageEntry{Name: "etc/marker", Body: "from-image\n"},
		imageEntry{Name: "etc/doomed", Body: "x"},
		imageEntry{Name: "work/", Type: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000},
		imageEntry{Name: "work/old", Body: "old\n", Mode: 0o644, Uid: 1000, Gid: 1000},
		imageEntry{Name: "d/", Type: tar.TypeDir, Mode: 0o755},
		imageEntry{Name: "d/f", Body: "lower\n", Mode: 0o644})
	top := imagetest.Layer(t, "gzip", imageEntry{Name: "etc/.wh.doomed"})
	img := imagetest.Image(t, runtime.GOARCH, layerFromDir(t, userRootfs(t)), mid, top)
	if res := r.bw("load", "-q", "-i", r.archive(img, "fuse-img:1")); res.code != 0 {
		t.Fatalf("rootless load: %v", res)
	}
	return "fuse-img:1"
}

// fuseDaemonsOf lists the account's fuse-overlayfs processes.
func fuseDaemonsOf(uid int) []string {
	var out []string
	for _, pid := range processesOf(uid) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) == "fuse-overlayfs" {
			out = append(out, fmt.Sprintf("%d %s", pid, cmdline(pid)))
		}
	}
	return out
}

// waitNoFuseDaemons waits up to d for the account's daemons to end.
func waitNoFuseDaemons(uid int, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := fuseDaemonsOf(uid)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// onFuse is a shell line that prints "root-on-fuse" when / is the
// fuse-overlayfs mount.
const onFuse = `awk '$5 == "/" && / fuse.fuse-overlayfs / {print "root-on-fuse"}' /proc/self/mountinfo`

func TestRootlessFuseOverlayRunsAnImageWithItsOwners(t *testing.T) {
	r := newRootlessEnv(t)
	img := fuseImage(t, r)
	res := r.bw("run", "--storage-driver", "fuse-overlayfs", img, "--", "sh", "-c",
		"id -u; cat /etc/marker; test -e /etc/doomed && echo doomed-present; "+onFuse)
	if res.code != 0 || res.stdout != "0\nfrom-image\nroot-on-fuse\n" {
		t.Fatalf("run --storage-driver fuse-overlayfs IMAGE -- id: want uid 0, the image's marker, no whited-out file and / on fuse-overlayfs, got %v", res)
	}
	if left := waitNoFuseDaemons(r.u.UID, 0); len(left) > 0 {
		t.Errorf("fuse-overlayfs still runs after the run returned: %v", left)
	}
	// The environment picks the driver too. A writable workload: uid
	// 1000 writes a new file and copies up one of its own; root writes
	// one; the container is kept, so its upper directory can be read.
	res = r.bwEnv([]string{"BULWARK_STORAGE_DRIVER=fuse-overlayfs"}, "run", "--keep", "--name", "fw", "--writable", "--user", "1000:1000", img, "--", "sh", "-c",
		"echo new > /work/new && echo more >> /work/old && cat /work/new /work/old && stat -c '%u %g' /work/new /work/old && "+onFuse)
	if want := "new\nold\nmore\n1000 1000\n1000 1000\nroot-on-fuse\n"; res.code != 0 || res.stdout != want {
		t.Fatalf("writable run as uid 1000 on fuse-overlayfs: want\n%s\ngot %v", want, res)
	}
	uppers, _ := filepath.Glob(filepath.Join(r.home, ".local/share/bulwark/containers/fw-*/upper"))
	if len(uppers) != 1 {
		r.bw("rm", "fw")
		t.Fatalf("no upper directory of container fw under the store")
	}
	// Container uid 1000 is the account's subordinate id 999 past the
	// range's start: the daemon runs with the container's mapping.
	sub := uint32(testrootfs.RootlessSubStart) + 999
	for _, f := range []string{"work/new", "work/old"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(uppers[0], f), &st); err != nil {
			t.Errorf("%s is not in the upper directory: %v", f, err)
			continue
		}
		if st.Uid != sub || st.Gid != sub {
			t.Errorf("upper %s is %d:%d on the host, want the subordinate id %d (container uid 1000)", f, st.Uid, st.Gid, sub)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(uppers[0], "work/old")); string(b) != "old\nmore\n" {
		t.Errorf("the copied-up file holds %q, want the lower's content and the append", b)
	}
	if res := r.bw("rm", "fw"); res.code != 0 {
		t.Errorf("rm fw: %v", res)
	}
	if _, err := os.Stat(filepath.Dir(uppers[0])); !os.IsNotExist(err) {
		t.Errorf("rm left the snapshot %s: %v", filepath.Dir(uppers[0]), err)
	}
}

func TestRootlessFuseOverlayDetachedDaemonEndsWithRmF(t *testing.T) {
	r := newRootlessEnv(t)
	img := fuseImage(t, r)
	t.Cleanup(func() {
		r.bw("rm", "-f", "fd")
		r.bw("rm", "-f", "fs")
	})
	if res := r.bwTo(filepath.Join(testrootfs.UserDir(t, r.u), "out"), "run", "-d", "--name", "fd", "--storage-driver", "fuse-overlayfs", img, "--", "sleep", "60"); res.code != 0 {
		t.Fatalf("run -d: %v", res)
	}
	if d := fuseDaemonsOf(r.u.UID); len(d) != 1 {
		t.Fatalf("a detached container on fuse-overlayfs: want one daemon, got %v", d)
	}
	if res := r.bw("rm", "-f", "fd"); res.code != 0 {
		t.Fatalf("rm -f: %v", res)
	}
	if left := waitNoFuseDaemons(r.u.UID, 5*time.Second); len(left) > 0 {
		t.Errorf("fuse-overlayfs outlives rm -f: %v", left)
	}
	// stop, then rm: the daemon ends with the container already.
	if res := r.bwTo(filepath.Join(testrootfs.UserDir(t, r.u), "out"), "run", "-d", "--name", "fs", "--storage-driver", "fuse-overlayfs", img, "--", "sleep", "60"); res.code != 0 {
		t.Fatalf("run -d: %v", res)
	}
	if res := r.bw("stop", "-t", "1", "fs"); res.code != 0 {
		t.Fatalf("stop: %v", res)
	}
	if left := waitNoFuseDaemons(r.u.UID, 5*time.Second); len(left) > 0 {
		t.Errorf("fuse-overlayfs outlives stop: %v", left)
	}
	if res := r.bw("rm", "fs"); res.code != 0 {
		t.Fatalf("rm: %v", res)
	}
}

// TestRootlessFuseOverlayKilledRunLeavesNothing kills `bulwark run` at
// points from mid-create to a running payload: where the container never
// got to run, its init ends and the daemon with it at once; where it runs,
// rm -f ends both. Nothing is left: no daemon, no mount, no state.
func TestRootlessFuseOverlayKilledRunLeavesNothing(t *testing.T) {
	r := newRootlessEnv(t)
	img := fuseImage(t, r)
	for i, delay := range []time.Duration{20, 120, 250, 600} {
		name := "fk-" + strconv.Itoa(i)
		run := r.start("run", "--name", name, "--storage-driver", "fuse-overlayfs", img, "--", "sleep", "30")
		time.Sleep(delay * time.Millisecond)
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()
		// The payload never ran: then no daemon may stay.
		ran := payloadRuns(r.u.UID, "sleep 30")
		t.Logf("killed at %v: payload running: %v", delay*time.Millisecond, ran)
		if !ran {
			if left := waitNoFuseDaemons(r.u.UID, 5*time.Second); len(left) > 0 && !payloadRuns(r.u.UID, "sleep 30") {
				t.Errorf("run killed at %v before its payload ran: fuse-overlayfs left: %v", delay, left)
			}
		}
		if res := r.bw("rm", "-f", name); res.code != 0 && !strings.Contains(res.stderr, "does not exist") {
			t.Errorf("rm -f %s after SIGKILL at %v: %v", name, delay, res)
		}
		if left := waitNoFuseDaemons(r.u.UID, 5*time.Second); len(left) > 0 {
			t.Errorf("after SIGKILL at %v and rm -f: fuse-overlayfs left: %v", delay, left)
		}
		// The snapshot too, also where the run died before its
		// container existed (the run's journal names it).
		snaps, _ := filepath.Glob(filepath.Join(r.home, ".local/share/bulwark/containers", name+"-*"))
		if len(snaps) > 0 {
			t.Errorf("after SIGKILL at %v and rm -f: snapshot left: %v", delay, snaps)
		}
	}
	// assertNothingLeft checks state, mounts and processes.
}

// payloadRuns tells whether a process of uid runs the command line cmd.
func payloadRuns(uid int, cmd string) bool {
	for _, pid := range processesOf(uid) {
		if strings.TrimSpace(cmdline(pid)) == cmd {
			return true
		}
	}
	return false
}

func TestRootlessFuseOverlayMissingBinaryIsNamed(t *testing.T) {
	r := newRootlessEnv(t)
	img := fuseImage(t, r)
	// A PATH with the id-mapping tools and no fuse-overlayfs.
	bin := testrootfs.UserDir(t, r.u)
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"run", "--storage-driver", "fuse-overlayfs", img, "--", "true"}},
		{[]string{"BULWARK_STORAGE_DRIVER=fuse-overlayfs"}, []string{"run", img, "--", "true"}},
	} {
		res := r.bwEnv(append(c.env, "PATH="+bin), c.args...)
		if res.code == 0 || !strings.Contains(res.stderr, "fuse-overlayfs is not in $PATH") || !strings.Contains(res.stderr, "apt-get install fuse-overlayfs") {
			t.Errorf("%v %v without fuse-overlayfs in PATH: want an error naming it and apt-get install fuse-overlayfs, got %v", c.env, c.args, res)
		}
	}
}

// TestRootlessFuseOverlayRootfsDoesNotLeadOutOfTheStore attacks
// fuse-overlayfs from inside: the daemon runs with the account's own ids
// (and its subordinate ones), so a path it followed outside the layers
// and upper directory could read or write the account's files. A
// directory of the account's, with a secret, is the target: through
// absolute and ".." symlinks made in the container, and through a file
// opened before its directory was swapped for a symlink to the target
// and then written (a copy-up by a stale path), then through names with
// "..". Nothing may be read or written there.
func TestRootlessFuseOverlayRootfsDoesNotLeadOutOfTheStore(t *testing.T) {
	r := newRootlessEnv(t)
	img := fuseImage(t, r)
	target := testrootfs.UserDir(t, r.u)
	if err := os.WriteFile(filepath.Join(target, "secret"), []byte("host-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(target, "secret"), r.u.UID, r.u.GID); err != nil {
		t.Fatal(err)
	}
	// Every directory on the way is passable, as for the daemon.
	for p := filepath.Dir(target); p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not passable for the account", p)
		}
	}
	script := strings.Join([]string{
		"ln -s " + target + " /abs",
		"ln -s ../../../../../../../../.." + target + " /rel",
		"cat /abs/secret /rel/secret " + target + "/secret /../../../.." + target + "/secret 2>/dev/null",
		"echo pwn > /abs/written 2>/dev/null",
		"echo pwn > /rel/written 2>/dev/null",
		// A file opened before its directory becomes a symlink to the
		// target, written through the old handle: copy-up by a stale path.
		"exec 3</d/f",
		"mv /d /d.moved && ln -s " + target + " /d",
		"echo pwn >> /proc/self/fd/3; echo append $?",
		"chmod 600 /proc/self/fd/3; echo chmod $?",
		"echo pwn > /d/f; echo write $?",
		"ls /d/ 2>/dev/null",
		"echo done",
	}, "; ")
	res := r.bw("run", "--writable", "--storage-driver", "fuse-overlayfs", img, "--", "sh", "-c", script)
	if res.code != 0 || !strings.HasSuffix(res.stdout, "done\n") {
		t.Fatalf("the attempt did not run to its end: %v", res)
	}
	// The stale handle was written, so a copy-up by its old path ran.
	if !strings.Contains(res.stdout, "append 0\n") {
		t.Fatalf("the write through the handle opened before the swap failed, so no copy-up was attempted: %v", res)
	}
	if strings.Contains(res.stdout, "host-secret") {
		t.Errorf("the container read the host file through fuse-overlayfs:\n%s", res.stdout)
	}
	ents, err := os.ReadDir(target)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "secret" {
			t.Errorf("the container wrote %s into the host directory", filepath.Join(target, e.Name()))
		}
	}
	if b, _ := os.ReadFile(filepath.Join(target, "secret")); string(b) != "host-secret\n" {
		t.Errorf("the host file changed: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(target, "secret")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the host file's mode changed: %v %v", fi.Mode(), err)
	}
}

// TestRootlessFuseOverlayWhereTheKernelRefusesOverlayfs puts the
// account's store on an overlayfs, which the kernel's overlayfs refuses
// as an upper directory ("not supported as upperdir", EINVAL): the run
// falls back to fuse-overlayfs by itself, and --storage-driver overlay
// gets the kernel's refusal instead.
func TestRootlessFuseOverlayWhereTheKernelRefusesOverlayfs(t *testing.T) {
	r := newRootlessEnv(t)
	testrootfs.RequireBinary(t, "fuse-overlayfs")
	base := t.TempDir()
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(base, "m")
	if err := syscall.Mount("overlay", merged, "overlay", 0, fmt.Sprintf("lowerdir=%s/l,upperdir=%s/u,workdir=%s/w", base, base, base)); err != nil {
		t.Skipf("an overlayfs for the store: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(merged, syscall.MNT_DETACH) })
	if err := os.Chown(merged, r.u.UID, r.u.GID); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(merged, "store")
	img := imagetest.Image(t, runtime.GOARCH, layerFromDir(t, userRootfs(t)),
		imagetest.Layer(t, "gzip", imageEntry{Name: "etc/marker", Body: "from-image\n"}, imageEntry{Name: "work/", Type: tar.TypeDir, Mode: 0o755}))
	if res := r.bw("--data-root", data, "load", "-q", "-i", r.archive(img, "fuse-auto:1")); res.code != 0 {
		t.Fatalf("load into a store on overlayfs: %v", res)
	}
	res := r.bw("--data-root", data, "run", "--writable", "fuse-auto:1", "--", "sh", "-c", "cat /etc/marker; echo w > /etc/w && cat /etc/w; "+onFuse)
	if res.code != 0 || res.stdout != "from-image\nw\nroot-on-fuse\n" {
		t.Errorf("run IMAGE with the store on overlayfs: want the image on fuse-overlayfs, got %v", res)
	}
	res = r.bw("--data-root", data, "run", "--storage-driver", "overlay", "fuse-auto:1", "--", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "invalid argument") || !strings.Contains(res.stderr, "overlay") {
		t.Errorf("--storage-driver overlay where the kernel refuses it: want the kernel's error, got %v", res)
	}
	// The fallback without fuse-overlayfs: both reasons named.
	bin := testrootfs.UserDir(t, r.u)
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if p, err := exec.LookPath(tool); err == nil {
			os.Symlink(p, filepath.Join(bin, tool))
		}
	}
	res = r.bwEnv([]string{"PATH=" + bin}, "--data-root", data, "run", "fuse-auto:1", "--", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "the kernel's overlayfs refused it (invalid argument)") || !strings.Contains(res.stderr, "apt-get install fuse-overlayfs") {
		t.Errorf("the fallback without fuse-overlayfs: want the kernel's refusal and apt-get install fuse-overlayfs, got %v", res)
	}
	if left := waitNoFuseDaemons(r.u.UID, 5*time.Second); len(left) > 0 {
		t.Errorf("fuse-overlayfs left: %v", left)
	}
	if res := r.bw("--data-root", data, "rmi", "fuse-auto:1"); res.code != 0 {
		t.Errorf("rmi: %v", res)
	}
}
