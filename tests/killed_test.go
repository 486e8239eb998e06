package tests

// A command SIGKILLed at any point of its work must leave nothing that
// rm -f (or delete -f) cannot remove, and rm -f must then leave nothing:
// the tests here kill one command at many delays, denser than its phases
// are long, and look for what is left after each.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// killDelays is where a kill-at-any-point test SIGKILLs its command: the
// given set (in ms), or with BULWARK_KILL_SWEEP=dense every 12 ms from 0
// to 708 ms (60 runs: what found the bugs these tests keep fixed, too
// slow for every run of the suite).
func killDelays(set ...time.Duration) []time.Duration {
	if os.Getenv("BULWARK_KILL_SWEEP") != "dense" {
		out := make([]time.Duration, len(set))
		for i, d := range set {
			out[i] = d * time.Millisecond
		}
		return out
	}
	var out []time.Duration
	for i := 0; i < 60; i++ {
		out = append(out, time.Duration(i*12)*time.Millisecond)
	}
	return out
}

// rmGone is rm -f's (or delete -f's) verdict after a kill: it removed the
// container, or says there is none.
func rmGone(r result) bool {
	return r.code == 0 || strings.Contains(r.stderr, "does not exist")
}

// TestUserRunDetachedKilledAtAnyPointLeavesNothingAfterRmF kills `bulwark
// run -d` at points from its start to its return. Its monitor went on
// making the container after the command was killed, so that rm -f, run
// right after, found no container (or a claim still busy) and the
// container appeared, running, after it: killed before it heard that the
// payload runs, the monitor must end too, and rm -f then leave nothing.
// Killed after, the container runs and rm -f removes it.
func TestUserRunDetachedKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	host := snapHost(t)
	for _, delay := range killDelays(0, 15, 30, 45, 60, 80, 100, 120, 150, 200, 300) {
		id := e.id()
		c := e.startBW("run", "-d", "--name", id, rootfs, "--", "sleep", "30")
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		if err := c.Wait(); err != nil {
			// Killed: its monitor must end with it (a moment later; a
			// loaded host's mount or cgroup call may hold its exit for
			// seconds), unless the word that the payload runs was
			// already on its way.
			for deadline := time.Now().Add(20 * time.Second); len(pidsMentioning(id)) > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if left := pidsMentioning(id); len(left) > 0 {
				if st := e.bw("state", id); !strings.Contains(st.stdout, `"running"`) {
					for _, l := range left {
						pid := strings.SplitN(l, ":", 2)[0]
						st, _ := os.ReadFile("/proc/" + pid + "/stat")
						wchan, _ := os.ReadFile("/proc/" + pid + "/wchan")
						t.Logf("%s: stat %s, wchan %s", l, st, wchan)
					}
					t.Errorf("run -d killed at %v: its monitor outlived it by 20 s, and no container runs: %v", delay, left)
				}
			}
		}
		r := e.bw("rm", "-f", id)
		if !rmGone(r) {
			t.Errorf("rm -f after SIGKILL at %v: %v", delay, r)
		}
		e.assertUserRunGone(id)
		if t.Failed() {
			t.Logf("rm -f after SIGKILL at %v: %v", delay, r)
		}
		// No network: host devices other tests make are not this run's.
		assertClean(t, e.root, id, "", hostSnap{links: hostLinks(t), children: host.children})
		if t.Failed() {
			t.Fatalf("stopping at the first kill point that left something (%v)", delay)
		}
	}
}

// killAfter starts cmd's bulwark, SIGKILLs it after delay and reaps it.
func (e *env) killAfter(delay time.Duration, args ...string) {
	e.t.Helper()
	c := e.startBW(args...)
	time.Sleep(delay)
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()
}

// TestUserRunImageOnABridgeKilledAtAnyPointLeavesNothingAfterRmF kills a
// root `bulwark run IMAGE --net bridge -p` from its snapshot's mount to a
// running payload, then rm -f: no mount, snapshot, state, cgroup, process,
// network device, address, iptables rule, network record or user
// namespace range is left.
func TestUserRunImageOnABridgeKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	e := newEnv(t)
	netRootfs(t) // skips without the CNI plugins
	dr := imageDataRoot(t, "example.com/busy:1")
	if r := e.bw("--data-root", dr, "run", "--name", e.id(), "--net", "bridge", "-p", "18270:80", "example.com/busy:1", "--", "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	host := snapHost(t)
	for i, delay := range killDelays(10, 30, 50, 70, 90, 110, 140, 180, 250, 400) {
		id := e.id()
		e.killAfter(delay, "--data-root", dr, "run", "--name", id, "--net", "bridge", "-p", fmt.Sprintf("%d:80", 18200+i), "example.com/busy:1", "--", "sleep", "30")
		if r := e.bw("--data-root", dr, "rm", "-f", id); !rmGone(r) {
			t.Errorf("rm -f after SIGKILL at %v: %v", delay, r)
		}
		e.assertUserRunGone(id)
		assertClean(t, e.root, id, "", host)
		if ms := mountsUnder(t, dr); len(ms) != 0 {
			t.Errorf("after SIGKILL at %v and rm -f: mounts left under the data root: %q", delay, ms)
		}
		if ents, _ := os.ReadDir(filepath.Join(dr, "containers")); len(ents) != 0 {
			t.Errorf("after SIGKILL at %v and rm -f: snapshots left: %v", delay, ents)
		}
		assertNetStateBack(t, before, "after SIGKILL at "+delay.String()+" and rm -f")
		if t.Failed() {
			t.Fatalf("stopping at the first kill point that left something (%v, run %d)", delay, i)
		}
	}
}

var _ = strconv.Itoa

// TestExecKilledAtAnyPointLeavesTheContainerWhole kills `bulwark exec
// --pid-file` into a running container at points from its start to its
// process running: the pid file is whole or absent, the container still
// runs and takes the next exec, and delete -f then leaves nothing.
func TestExecKilledAtAnyPointLeavesTheContainerWhole(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	host := snapHost(t)
	e.mustOK("create", "-b", bundle, id)
	e.mustOK("start", id)
	pidDir := t.TempDir()
	for i, delay := range killDelays(0, 5, 10, 20, 30, 45, 60, 80, 120, 200) {
		pf := filepath.Join(pidDir, strconv.Itoa(i))
		e.killAfter(delay, "exec", "--pid-file", pf, id, "sleep", "30")
		if b, err := os.ReadFile(pf); err == nil {
			if _, err := strconv.Atoi(string(b)); err != nil {
				t.Errorf("exec killed at %v left pid file %q", delay, b)
			}
		}
		if r := e.bw("exec", id, "true"); r.code != 0 {
			t.Errorf("exec after one killed at %v: %v", delay, r)
		}
		if st := e.state(id); st["status"] != "running" {
			t.Errorf("after exec killed at %v: %v", delay, st)
		}
		if t.Failed() {
			t.Fatalf("stopping at %v", delay)
		}
	}
	if r := e.bw("delete", "-f", id); r.code != 0 {
		t.Errorf("delete -f: %v", r)
	}
	// No network: host devices other tests make are not this container's.
	assertClean(t, e.root, id, bundle, hostSnap{links: hostLinks(t), children: host.children})
}

// TestImageLoadKilledAtAnyPointThenRetried kills `bulwark load` at points
// from the archive's first read to the index's write: the store lists the
// image whole or not at all, a retry loads it, and nothing of the killed
// load is left in the store.
func TestImageLoadKilledAtAnyPointThenRetried(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "img.tar")
	ref, _ := name.NewTag("example.com/killed:1")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	for i, delay := range killDelays(0, 10, 20, 40, 60, 90, 120, 160, 220, 300) {
		dr := filepath.Join(dir, "dr"+strconv.Itoa(i))
		c := exec.Command(bulwarkBin, "--data-root", dr, "load", "-q", "-i", archive)
		c.Start()
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		if ims := listImages(t, dr); len(ims) > 1 {
			t.Errorf("load killed at %v: %v", delay, ims)
		}
		if _, serr, err := bulwarkImages(t, dr, nil, "load", "-q", "-i", archive); err != nil {
			t.Errorf("retry after load killed at %v: %v: %s", delay, err, serr)
		}
		if ims := listImages(t, dr); len(ims) != 1 || layerDirs(t, dr) != 2 {
			t.Errorf("after retry (killed at %v): %d images, %d layers", delay, len(ims), layerDirs(t, dr))
		}
		if left := storeLeftovers(dr); len(left) != 0 {
			t.Errorf("after retry (killed at %v): leftovers %v", delay, left)
		}
		if _, serr, err := bulwarkImages(t, dr, nil, "rmi", "example.com/killed:1"); err != nil {
			t.Errorf("rmi after load killed at %v: %v: %s", delay, err, serr)
		}
		if t.Failed() {
			t.Fatalf("stopping at %v", delay)
		}
	}
}

// TestImagePullKilledAtAnyPointThenRetried is the same for `bulwark pull`
// (TestImagePullKilledThenRetried holds one kill inside a layer).
func TestImagePullKilledAtAnyPointThenRetried(t *testing.T) {
	img := testImage(t)
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "killed:1", img)
	dir := t.TempDir()
	for i, delay := range killDelays(0, 10, 20, 40, 60, 90, 120, 160, 220, 300) {
		dr := filepath.Join(dir, "dr"+strconv.Itoa(i))
		c := exec.Command(bulwarkBin, "--data-root", dr, "pull", "-q", ref)
		c.Start()
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		if ims := listImages(t, dr); len(ims) > 1 {
			t.Errorf("pull killed at %v: %v", delay, ims)
		}
		if _, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref); err != nil {
			t.Errorf("retry after pull killed at %v: %v: %s", delay, err, serr)
		}
		if ims := listImages(t, dr); len(ims) != 1 || layerDirs(t, dr) != 2 {
			t.Errorf("after retry (killed at %v): %d images, %d layers", delay, len(ims), layerDirs(t, dr))
		}
		if left := storeLeftovers(dr); len(left) != 0 {
			t.Errorf("after retry (killed at %v): leftovers %v", delay, left)
		}
		if t.Failed() {
			t.Fatalf("stopping at %v", delay)
		}
	}
}

// TestRootlessImageRunKilledAtAnyPointLeavesNothingAfterRmF kills a
// rootless `bulwark run IMAGE` (the kernel's overlayfs in the container's
// user namespace) from its snapshot's making to a running payload, then
// rm -f: no state, mount, process or snapshot of the account is left.
// And over fuse-overlayfs (--storage-driver), where installed.
func TestRootlessImageRunKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	r := newRootlessEnv(t)
	img := rootlessImage(t, r)
	drivers := []string{"overlay"}
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		t.Logf("fuse-overlayfs not installed: the overlay driver alone: %v", err)
	} else if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Logf("no /dev/fuse: the overlay driver alone: %v", err)
	} else {
		drivers = append(drivers, "fuse-overlayfs")
	}
	for _, driver := range drivers {
		for i, delay := range killDelays(10, 30, 50, 70, 90, 110, 140, 180, 250, 400) {
			name := "k" + driver[:1] + strconv.Itoa(i)
			args := []string{"run", "--name", name}
			if driver != "overlay" {
				args = append(args, "--storage-driver", driver)
			}
			run := r.start(append(args, img, "--", "sleep", "30")...)
			time.Sleep(delay)
			run.Process.Signal(syscall.SIGKILL)
			run.Wait()
			if res := r.bw("rm", "-f", name); !rmGone(res) {
				t.Errorf("%s: rm -f %s after SIGKILL at %v: %v", driver, name, delay, res)
			}
			// An init whose runtime was killed ends when it reads the end
			// of its pipe, a moment later: given 5 s.
			for deadline := time.Now().Add(5 * time.Second); len(processesOf(r.u.UID)) > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			r.assertNothingLeft()
			snaps, _ := filepath.Glob(filepath.Join(r.home, ".local/share/bulwark/containers", "*"))
			if len(snaps) > 0 {
				t.Errorf("%s: after SIGKILL at %v and rm -f: snapshot left: %v", driver, delay, snaps)
			}
			if t.Failed() {
				t.Fatalf("%s: stopping at %v", driver, delay)
			}
		}
	}
}
