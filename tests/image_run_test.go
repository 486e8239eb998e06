package tests

import (
	"archive/tar"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

// layerFromDir tars dir as a layer owned by root, as an image build would.
func layerFromDir(t *testing.T, dir string) v1.Layer {
	t.Helper()
	l, err := imagetest.LayerFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageDataRoot loads a busybox image (the test rootfs, a layer with a
// marker, a layer whiting a file of the one below out; User "app") into a fresh data root the container's mapped
// root can traverse, and returns the data root.
func imageDataRoot(t *testing.T, tag string, config ...func(*v1.Config)) string {
	t.Helper()
	mid := imagetest.Layer(t, "gzip",
		imageEntry{Name: "etc/marker", Body: "from-image\n"},
		imageEntry{Name: "etc/doomed", Body: "x"},
		imageEntry{Name: "work/", Type: tar.TypeDir},
		// An image's paths are resolved inside it: this leads nowhere on the host.
		imageEntry{Name: "escape", Type: tar.TypeSymlink, Link: escapeProbe})
	top := imagetest.Layer(t, "zstd", imageEntry{Name: "etc/.wh.doomed"})
	img := imagetest.Image(t, runtime.GOARCH, layerFromDir(t, userRootfs(t)), mid, top)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User = "app" // a name: looked up in the mounted snapshot
	for _, c := range config {
		c(&cf.Config)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "img.tar")
	if err := tarball.WriteToFile(archive, ref, img); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dr := filepath.Join(base, "data")
	if _, serr, err := bulwarkImages(t, dr, nil, "load", "-q", "-i", archive); err != nil {
		t.Fatalf("load: %v: %s", err, serr)
	}
	return dr
}

// TestUserRunImageOnItsOwnSnapshot runs an image from the store: the
// image's Env and WorkingDir apply under the person's flags, its files are
// the container root's through idmapped layers, writes land in the
// container's own upper dir, and delete leaves no mount or directory.
func TestUserRunImageOnItsOwnSnapshot(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:1")
	id := e.id()
	r := e.bw("--data-root", dr, "run", "--name", id, "-e", "FOO=person", "example.com/busy:1", "--",
		"sh", "-c", "id -u; echo $IMAGE_ARCH $FOO; pwd; cat /etc/marker; stat -c %u /etc/marker; test -e /etc/doomed || echo whited-out")
	if r.code != 0 {
		t.Fatalf("run IMAGE: %s", r)
	}
	want := strings.Join([]string{"1000", runtime.GOARCH + " person", "/work", "from-image", "0", "whited-out"}, "\n") + "\n"
	if r.stdout != want {
		t.Errorf("run IMAGE printed %q, want %q", r.stdout, want)
	}
	e.assertUserRunGone(id)
	// --user over the image's User; a write lands in this container's upper dir.
	id = e.id()
	r = e.bw("--data-root", dr, "run", "--name", id, "--user", "0", "--writable", "example.com/busy:1", "--",
		"sh", "-c", "echo w > /etc/marker && cat /etc/marker")
	if r.code != 0 || r.stdout != "w\n" {
		t.Fatalf("run IMAGE --user 0 --writable: %s", r)
	}
	e.assertUserRunGone(id)
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left under the data root: %q", ms)
	}
	if ents, _ := os.ReadDir(filepath.Join(dr, "containers")); len(ents) != 0 {
		t.Errorf("snapshots left: %d", len(ents))
	}
	out, serr, err := bulwarkImages(t, dr, nil, "image", "inspect", "example.com/busy:1")
	if err != nil {
		t.Fatalf("inspect: %v %s", err, serr)
	}
	// The marker's layer, below the top one.
	i := strings.LastIndex(out[:strings.LastIndex(out, `"dir": "`)], `"dir": "`)
	topDir := out[i+len(`"dir": "`):]
	topDir = topDir[:strings.Index(topDir, `"`)]
	if b, err := os.ReadFile(filepath.Join(topDir, "etc/marker")); err != nil || string(b) != "from-image\n" {
		t.Errorf("the container's write reached the shared layer: %q %v", b, err)
	}
}

func TestUserRunUnknownImageFailsClearly(t *testing.T) {
	e := newEnv(t)
	dr := t.TempDir()
	id := e.id()
	r := e.bw("--data-root", dr, "run", "--name", id, "nosuch:1", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "nosuch:1") {
		t.Fatalf("run of an unknown image: %s", r)
	}
	e.assertUserRunGone(id)
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left: %q", ms)
	}
}

// TestImageRmiKeepsLayersARunningContainerUses removes an image while a
// container runs on it: the name goes at once, the layers stay until the
// container is gone, then prune frees them.
func TestImageRmiKeepsLayersARunningContainerUses(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:2")
	t.Setenv("BULWARK_DATA_ROOT", dr)
	_, out, stop := e.startUserRun(nil, "example.com/busy:2", "sh", "-c", "echo ready; read x")
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("container did not start: %q %v", line, err)
	}
	if o, serr, err := bulwarkImages(t, dr, nil, "rmi", "example.com/busy:2"); err != nil || !strings.Contains(o, "Deleted:") {
		t.Fatalf("rmi of an image in use: %v: %s%s", err, o, serr)
	}
	if n := layerDirs(t, dr); n != 3 {
		t.Errorf("rmi while a container runs on the image left %d layers, want all 3", n)
	}
	stop()
	if o, serr, err := bulwarkImages(t, dr, nil, "image", "prune"); err != nil || !strings.Contains(o, "Removed 3 unused layers") {
		t.Fatalf("prune after the container: %v: %s%s", err, o, serr)
	}
	if n := layerDirs(t, dr); n != 0 {
		t.Errorf("%d layers left after prune", n)
	}
}

// escapeProbe is where the test image's "escape" symlink points: a host
// path nothing may create.
const escapeProbe = "/tmp/bulwark-image-escape-probe"

// TestUserRunImageRunsItsOwnCommandWithItsConfig runs an image without a
// command, with and without the "--": its Entrypoint and Cmd run with its
// Env, WorkingDir and User, its VOLUMEs are writable although the rootfs
// is read-only and hold the image's files, and the person's flags win
// over each (-e, -w, -u, --entrypoint, a command, --image-volume).
func TestUserRunImageRunsItsOwnCommandWithItsConfig(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:3", func(c *v1.Config) {
		c.Entrypoint = []string{"sh", "-c"}
		c.Cmd = []string{"echo $FOO; pwd; id -u; cat /etc/marker; echo ok > /etc/new && cat /etc/new; echo d > /data/f && cat /data/f"}
		c.Env = append(c.Env, "FOO=from-image")
		c.WorkingDir = "/work"
		c.User = "0"
		c.Volumes = map[string]struct{}{"/etc": {}, "/data": {}}
		c.StopSignal = "SIGUSR1"
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	})
	want := "from-image\n/work\n0\nfrom-image\nok\nd\n"
	for _, args := range [][]string{
		{"example.com/busy:3"},
		{"example.com/busy:3", "--"},
	} {
		id := e.id()
		r := e.bw(append([]string{"--data-root", dr, "run", "--name", id}, args...)...)
		if r.code != 0 || r.stdout != want {
			t.Fatalf("run %q: %s\nwant stdout %q", args, r, want)
		}
		e.assertUserRunGone(id)
	}
	id := e.id()
	r := e.bw("--data-root", dr, "run", "--name", id, "-e", "FOO=person", "-w", "/", "-u", "1000", "example.com/busy:3", "echo $FOO; pwd; id -u")
	if r.code != 0 || r.stdout != "person\n/\n1000\n" {
		t.Fatalf("run IMAGE CMD with -e -w -u: %s", r)
	}
	e.assertUserRunGone(id)
	id = e.id()
	r = e.bw("--data-root", dr, "run", "--name", id, "--entrypoint", "echo", "example.com/busy:3", "--", "a", "b")
	if r.code != 0 || r.stdout != "a b\n" {
		t.Fatalf("run --entrypoint echo IMAGE -- a b: %s", r)
	}
	id = e.id()
	r = e.bw("--data-root", dr, "run", "--name", id, "--image-volume", "tmpfs", "example.com/busy:3", "--", "ls /data | wc -l; touch /data/x && echo tmpfs-writable")
	if r.code != 0 || r.stdout != "0\ntmpfs-writable\n" {
		t.Fatalf("run --image-volume tmpfs: %s", r)
	}
	id = e.id()
	r = e.bw("--data-root", dr, "run", "--name", id, "--image-volume", "ignore", "example.com/busy:3", "--", "touch /etc/x")
	if r.code == 0 {
		t.Fatalf("run --image-volume ignore: /etc writable on a read-only rootfs: %s", r)
	}
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left under the data root: %q", ms)
	}
}

// An image's VOLUME and StopSignal are the image's word, so hostile: a
// VOLUME under a symlink that points out of the image is made inside the
// container's snapshot, never on the host, and a bad StopSignal is refused
// naming the image.
func TestUserRunImageHostileConfigStaysInside(t *testing.T) {
	e := newEnv(t)
	os.RemoveAll(escapeProbe)
	dr := imageDataRoot(t, "example.com/busy:4", func(c *v1.Config) {
		c.Volumes = map[string]struct{}{"/escape/data": {}}
	})
	id := e.id()
	r := e.bw("--data-root", dr, "run", "--name", id, "-u", "0", "example.com/busy:4", "--", "sh", "-c", "echo x > /escape/data/f && cat /escape/data/f")
	if r.code != 0 || r.stdout != "x\n" {
		t.Fatalf("run with a VOLUME under a symlink: %s", r)
	}
	e.assertUserRunGone(id)
	if _, err := os.Lstat(escapeProbe); err == nil {
		t.Errorf("the image's VOLUME was made on the host at %s", escapeProbe)
	}
	dr = imageDataRoot(t, "example.com/busy:5", func(c *v1.Config) { c.StopSignal = "SIGNOPE" })
	id = e.id()
	r = e.bw("--data-root", dr, "run", "--name", id, "example.com/busy:5", "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "StopSignal") || !strings.Contains(r.stderr, "example.com/busy:5") {
		t.Fatalf("run of an image with a bad StopSignal: %s", r)
	}
	e.assertUserRunGone(id)
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left under the data root: %q", ms)
	}
}

// TestSpecImageWritesABundleRuncsFormRuns: spec --image writes a bundle
// (a plain copy of the image, whiteouts applied, and the profile's config
// running the image's command) that runc's form of run runs as it is.
func TestSpecImageWritesABundleRuncsFormRuns(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:7", func(c *v1.Config) {
		c.Entrypoint = []string{"sh", "-c"}
		c.Cmd = []string{"cat /etc/marker; id -u; test -e /etc/doomed || echo whited-out"}
	})
	bundle := t.TempDir()
	for _, d := range []string{bundle, filepath.Dir(bundle)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.bw("--data-root", dr, "spec", "--image", "example.com/busy:7", "-b", bundle); r.code != 0 {
		t.Fatalf("spec --image: %s", r)
	}
	if fi, err := os.Stat(filepath.Join(bundle, "rootfs/etc/marker")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("the bundle's rootfs lacks the image's files, owned as in it: %v", err)
	}
	r := e.bw("run", "-b", bundle, e.id())
	if r.code != 0 || r.stdout != "from-image\n1000\nwhited-out\n" {
		t.Fatalf("run -b of the bundle: %s", r)
	}
	if r := e.bw("--data-root", dr, "spec", "--image", "example.com/busy:7", "-b", bundle); r.code == 0 {
		t.Errorf("spec --image over an existing bundle succeeded: %s", r)
	}
	other := t.TempDir()
	if r := e.bw("--data-root", dr, "spec", "--image", "nosuch:1", "-b", other); r.code == 0 || !strings.Contains(r.stderr, "nosuch:1") {
		t.Errorf("spec --image of an unknown image: %s", r)
	}
	if ents, _ := os.ReadDir(other); len(ents) != 0 {
		t.Errorf("spec --image of an unknown image left %d entries", len(ents))
	}
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left under the data root: %q", ms)
	}
}

// TestUserRunImageKilledAtAnyPointLeavesNothingAfterRm kills `bulwark run
// IMAGE` at points from the snapshot's mount to a running payload, then
// removes the name: whether the container existed yet or not, no mount,
// snapshot, state, claim or user namespace range is left. Before the run
// journalled what it made, a run killed between mounting the image's
// snapshot and writing its container's state left the overlay mounted
// under the data root, since only the claim on its name was on record.
func TestUserRunImageKilledAtAnyPointLeavesNothingAfterRm(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:1")
	for _, delay := range killDelays(5, 15, 25, 40, 60, 90, 130, 200, 400) {
		id := e.id()
		run := e.startBW("--data-root", dr, "run", "--name", id, "example.com/busy:1", "--", "sleep", "30")
		time.Sleep(delay)
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()
		if r := e.bw("--data-root", dr, "rm", "-f", id); r.code != 0 && !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("rm -f after SIGKILL at %v: %v", delay, r)
		}
		e.assertUserRunGone(id)
		if ms := mountsUnder(t, dr); len(ms) != 0 {
			t.Errorf("after SIGKILL at %v and rm -f: mounts left under the data root: %q", delay, ms)
			for _, m := range ms {
				unix.Unmount(m, unix.MNT_DETACH)
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(dr, "containers")); len(ents) != 0 {
			t.Errorf("after SIGKILL at %v and rm -f: snapshots left: %v", delay, ents)
			for _, en := range ents {
				os.RemoveAll(filepath.Join(dr, "containers", en.Name()))
			}
		}
	}
}
