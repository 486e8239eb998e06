package tests

// Rootless images keep their owners: layers are unpacked in a user
// namespace with the test account's whole rootless mapping, so the
// image's uids, gids, setuid and setgid bits are exact inside the
// container, which runs with the same mapping.

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// ownersImage is busybox with a layer of files of several owners, a
// setgid directory, a setuid binary and a VOLUME holding a service
// user's private file.
func ownersImage(t *testing.T) v1.Image {
	t.Helper()
	owned := imagetest.Layer(t, "gzip",
		// The layer's own root belongs to another id: every rename of
		// the layer in the store (commit, rmi) must still work.
		imageEntry{Name: "./", Type: tar.TypeDir, Mode: 0o755, Uid: 1000, Gid: 1000},
		imageEntry{Name: "data/", Type: tar.TypeDir, Mode: 0o755},
		imageEntry{Name: "data/user", Body: "u", Mode: 0o640, Uid: 1000, Gid: 1000},
		imageEntry{Name: "data/www", Body: "w", Mode: 0o600, Uid: 33, Gid: 34},
		imageEntry{Name: "data/high", Body: "h", Mode: 0o644, Uid: 65000, Gid: 65001},
		imageEntry{Name: "data/mail/", Type: tar.TypeDir, Mode: 0o2775, Gid: 8},
		imageEntry{Name: "data/suid", Body: "#!/bin/sh\n", Mode: 0o4755},
		imageEntry{Name: "data/sgid-bin", Body: "#!/bin/sh\n", Mode: 0o2755, Gid: 42},
		imageEntry{Name: "data/link", Type: tar.TypeSymlink, Link: "user", Uid: 1000, Gid: 1000},
		imageEntry{Name: "srv/db/", Type: tar.TypeDir, Mode: 0o700, Uid: 999, Gid: 999},
		imageEntry{Name: "srv/db/conf", Body: "db\n", Mode: 0o640, Uid: 999, Gid: 999})
	img, err := imagetest.Stack(runtime.GOARCH, v1.Config{
		Env:     []string{"PATH=/bin"},
		Cmd:     []string{"/bin/sh"},
		Volumes: map[string]struct{}{"/srv/db": {}, "/srv/empty": {}},
	}, layerFromDir(t, userRootfs(t)), owned)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ownersWant is what stat -c '%n %u %g %a' prints for ownersImage's files.
const ownersWant = `/data/user 1000 1000 640
/data/www 33 34 600
/data/high 65000 65001 644
/data/mail 0 8 2775
/data/suid 0 0 4755
/data/sgid-bin 0 42 2755
/srv/db 999 999 700
/srv/db/conf 999 999 640
`

const ownersStat = "stat -c '%n %u %g %a' /data/user /data/www /data/high /data/mail /data/suid /data/sgid-bin /srv/db /srv/db/conf"

// TestRootlessImageKeepsOwnersPulledAndLoaded pulls the image from the
// tests' registry into the account's store and loads it from an archive
// into a second one; in both the container sees the image's exact ids and
// modes, the host holds them as the account's subordinate ids, each
// VOLUME is a fresh copy of the image's content there (owners kept,
// writable, gone with the container), and a store unpacked under other
// ranges is refused, naming what to do.
func TestRootlessImageKeepsOwnersPulledAndLoaded(t *testing.T) {
	r := newRootlessEnv(t)
	img := ownersImage(t)
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "owners:1", img)
	loaded := filepath.Join(testrootfs.UserDir(t, r.u), "data")
	archive := r.archive(img, "owners:1")
	r.pull(ref)
	if res := r.bw("--data-root", loaded, "load", "-q", "-i", archive); res.code != 0 {
		t.Fatalf("rootless load: %v", res)
	}
	for _, c := range []struct{ how, dataRoot, ref string }{
		{"pulled", filepath.Join(r.home, ".local/share/bulwark"), ref},
		{"loaded", loaded, "owners:1"},
	} {
		// As the service user: the container's root has no
		// CAP_DAC_OVERRIDE to read a 0700 directory of another id.
		res := r.bw("--data-root", c.dataRoot, "run", "--user", "999:999", c.ref, "--", "sh", "-c",
			ownersStat+" && echo new > /srv/db/new && cat /srv/db/new && stat -c '%n %u %g %a' /srv/empty")
		if want := ownersWant + "new\n/srv/empty 0 0 755\n"; res.code != 0 || res.stdout != want {
			t.Errorf("%s: rootless run shows\n%s\nwant\n%s\n(%v)", c.how, res.stdout, want, res)
		}
		// On the host: the image's uid 1000 is the account's
		// subordinate id 999 past the range's start (container id 1 is
		// the range's first).
		layers, _ := filepath.Glob(filepath.Join(c.dataRoot, "images/layers/sha256/*/data/user"))
		if len(layers) != 1 {
			t.Fatalf("%s: no unpacked data/user under %s", c.how, c.dataRoot)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(layers[0], &st); err != nil {
			t.Fatal(err)
		}
		if want := uint32(testrootfs.RootlessSubStart) + 999; st.Uid != want || st.Gid != want {
			t.Errorf("%s: data/user on the host is %d:%d, want the subordinate id %d", c.how, st.Uid, st.Gid, want)
		}
		// The next container gets the image's VOLUME content afresh.
		if res := r.bw("--data-root", c.dataRoot, "run", "--user", "999:999", c.ref, "--", "ls", "/srv/db"); res.code != 0 || res.stdout != "conf\n" {
			t.Errorf("%s: the VOLUME of the next container: %v", c.how, res)
		}
		if ents, _ := os.ReadDir(filepath.Join(c.dataRoot, "containers")); len(ents) != 0 {
			t.Errorf("%s: snapshots left behind: %v", c.how, ents)
		}
	}
	// Another mapping than the one the store was unpacked with.
	rec := filepath.Join(loaded, "images/idmap")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatalf("the store records no mapping: %v", err)
	}
	if err := os.WriteFile(rec, []byte(strings.Replace(string(b), "uid 1 ", "uid 1 1", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := r.bw("--data-root", loaded, "run", "owners:1", "--", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "another id mapping") || !strings.Contains(res.stderr, "restore the earlier ranges") {
		t.Errorf("a store unpacked under other ranges: want refused saying what to do, got %v", res)
	}
	if err := os.WriteFile(rec, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// rmi removes layers of subordinate ids through the account's
	// user namespace.
	for _, c := range []struct{ dataRoot, ref string }{{loaded, "owners:1"}, {filepath.Join(r.home, ".local/share/bulwark"), ref}} {
		if res := r.bw("--data-root", c.dataRoot, "rmi", c.ref); res.code != 0 {
			t.Errorf("rootless rmi: %v", res)
		}
		if ents, _ := os.ReadDir(filepath.Join(c.dataRoot, "images/layers/sha256")); len(ents) != 0 {
			t.Errorf("rmi left %d layers in %s", len(ents), c.dataRoot)
		}
	}
}

// TestImageKeepsOwnersForRootToo: root's run of the same image (its
// layers chowned as the image says, idmapped into the container's range)
// shows the same ids and modes, and its VOLUME the image's content.
func TestImageKeepsOwnersForRootToo(t *testing.T) {
	e := newEnv(t)
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "owners:1", ownersImage(t))
	base := t.TempDir()
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dr := filepath.Join(base, "data")
	if _, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref); err != nil {
		t.Fatalf("pull: %v: %s", err, serr)
	}
	id := e.id()
	res := e.bw("--data-root", dr, "run", "--name", id, "--user", "999:999", ref, "--", "sh", "-c", ownersStat+" && echo new > /srv/db/new && cat /srv/db/new")
	if want := ownersWant + "new\n"; res.code != 0 || res.stdout != want {
		t.Errorf("root run shows\n%s\nwant\n%s\n(%v)", res.stdout, want, res)
	}
	e.assertUserRunGone(id)
}

// TestRootlessDebianImageKeepsOwners runs a layer of the real Debian
// rootfs (its /etc, /var and setuid passwd, owners as mmdebstrap made
// them) over busybox, rootless: /etc/shadow is group shadow, /var/mail
// setgid group mail, the service users' directories theirs.
func TestRootlessDebianImageKeepsOwners(t *testing.T) {
	r := newRootlessEnv(t)
	deb := testrootfs.RequireDebian(t)
	var want strings.Builder
	paths := []string{"/etc/shadow", "/var/mail", "/usr/bin/passwd", "/var/lib/postgresql", "/etc/redis"}
	for _, p := range paths {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(deb, p), &st); err != nil {
			t.Skipf("the Debian rootfs has no %s: %v", p, err)
		}
		fmt.Fprintf(&want, "%s %d %d %o\n", p, st.Uid, st.Gid, st.Mode&0o7777)
	}
	if !strings.Contains(want.String(), "/etc/shadow 0 42 640") {
		t.Fatalf("the Debian rootfs's /etc/shadow is not root:shadow 0640: %s", want.String())
	}
	debLayer, err := imagetest.LayerOwnedFrom(deb, "etc", "var", "usr/bin/passwd")
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Stack(runtime.GOARCH, v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}},
		layerFromDir(t, userRootfs(t)), debLayer)
	if err != nil {
		t.Fatal(err)
	}
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "debian-owners:1", img)
	r.pull(ref)
	res := r.bw("run", ref, "--", "stat", "-c", "%n %u %g %a", paths[0], paths[1], paths[2], paths[3], paths[4])
	if res.code != 0 || res.stdout != want.String() {
		t.Errorf("Debian's owners in a rootless container:\n%s\nwant\n%s\n(%v)", res.stdout, want.String(), res)
	}
	if res := r.bw("rmi", ref); res.code != 0 {
		t.Errorf("rmi: %v", res)
	}
}

// TestRootlessDetachedImageRunLogsStopRm: a person's service without
// root, from an image pulled by the account: run -d prints the name, logs
// has the output, stop ends it, rm leaves nothing (assertNothingLeft).
func TestRootlessDetachedImageRunLogsStopRm(t *testing.T) {
	r := newRootlessEnv(t)
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "svc:1", ownersImage(t))
	r.pull(ref)
	res := r.bw("run", "-d", "--user", "999:999", "--name", "rl-svc", ref, "--", "sh", "-c", "cat /srv/db/conf; echo started; while :; do sleep 0.1; done")
	if res.code != 0 || res.stdout != "rl-svc\n" {
		t.Fatalf("rootless run -d: %v", res)
	}
	if logs := waitLogs(t, r.bw, "rl-svc", "started\n"); logs.stdout != "db\nstarted\n" {
		t.Errorf("rootless logs: %v", logs)
	}
	if res := r.bw("ls"); !strings.Contains(res.stdout, "rl-svc") || !strings.Contains(res.stdout, "running") {
		t.Errorf("rootless ls: %v", res)
	}
	if res := r.bw("stop", "-t", "1", "rl-svc"); res.code != 0 {
		t.Errorf("rootless stop: %v", res)
	}
	if res := r.bw("rm", "rl-svc"); res.code != 0 {
		t.Errorf("rootless rm: %v", res)
	}

	if ents, _ := os.ReadDir(filepath.Join(r.home, ".local/share/bulwark/containers")); len(ents) != 0 {
		t.Errorf("snapshot left after rm: %v", ents)
	}
	if res := r.bw("rmi", ref); res.code != 0 {
		t.Errorf("rmi: %v", res)
	}
}

// TestRootlessBadLayerLeavesNothing: a layer that escapes its root after
// writing files of other owners, and a layer whose owner is past the
// account's ranges, fail naming the entry (and, for the owner, the ranges
// to grant); the store holds no layer and no temp dir afterwards.
func TestRootlessBadLayerLeavesNothing(t *testing.T) {
	r := newRootlessEnv(t)
	host := imagetest.Registry(t, nil)
	for _, c := range []struct {
		name  string
		ents  []imageEntry
		wants []string
	}{
		{"escape", []imageEntry{
			{Name: "d/", Type: tar.TypeDir, Mode: 0o700, Uid: 999, Gid: 999},
			{Name: "d/f", Body: "x", Mode: 0o600, Uid: 999, Gid: 999},
			{Name: "../evil", Body: "x"},
		}, []string{"../evil", "unsafe path"}},
		{"unmapped", []imageEntry{
			{Name: "d/", Type: tar.TypeDir, Mode: 0o700, Uid: 999, Gid: 999},
			{Name: "d/f", Body: "x", Uid: 999, Gid: 999},
			{Name: "d/far", Body: "x", Uid: 70000, Gid: 70000},
		}, []string{"d/far", "/etc/subuid"}},
	} {
		img := imagetest.Image(t, runtime.GOARCH, imagetest.Layer(t, "gzip", c.ents...))
		ref := imagetest.Push(t, host, "bad-"+c.name+":1", img)
		res := r.bw("pull", "-q", ref)
		if res.code == 0 {
			t.Errorf("%s: pull succeeded", c.name)
		}
		for _, w := range c.wants {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("%s: error does not name %q: %v", c.name, w, res)
			}
		}
		for _, d := range []string{"layers/sha256", "tmp"} {
			if ents, _ := os.ReadDir(filepath.Join(r.home, ".local/share/bulwark/images", d)); len(ents) != 0 {
				t.Errorf("%s: %s holds %d entries after a failed pull", c.name, d, len(ents))
			}
		}
	}
}

// TestRootlessImageSizeOfReusedLayerIsRoots: an image whose layers are
// already in the store (another image of the same layers) takes its size
// from what the pull recorded, not from a walk of the layers, which
// cannot enter owners' 0700 directories of subordinate ids (/srv/db): its
// rootless `images --json` size is root's for the same image, and the
// same as the first image's.
func TestRootlessImageSizeOfReusedLayerIsRoots(t *testing.T) {
	r := newRootlessEnv(t)
	first := ownersImage(t)
	again, err := mutate.Config(first, v1.Config{Env: []string{"PATH=/bin", "AGAIN=1"}, Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	host := imagetest.Registry(t, nil)
	refs := []string{imagetest.Push(t, host, "owners:1", first), imagetest.Push(t, host, "owners:again", again)}
	sizes := func(how string, list func() (string, error)) map[string]int64 {
		t.Helper()
		out, err := list()
		if err != nil {
			t.Fatalf("%s images --json: %v", how, err)
		}
		var ims []struct {
			Names []string `json:"names"`
			Size  int64    `json:"size"`
		}
		if err := json.Unmarshal([]byte(out), &ims); err != nil {
			t.Fatalf("%s images --json: %v: %q", how, err, out)
		}
		m := map[string]int64{}
		for _, im := range ims {
			for _, n := range im.Names {
				m[n[strings.LastIndexByte(n, '/')+1:]] = im.Size
			}
		}
		return m
	}
	for _, ref := range refs {
		r.pull(ref)
	}
	rootless := sizes("rootless", func() (string, error) {
		res := r.bw("images", "--json")
		if res.code != 0 {
			return "", fmt.Errorf("%v", res)
		}
		return res.stdout, nil
	})
	dr := filepath.Join(t.TempDir(), "data")
	for _, ref := range refs {
		if _, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref); err != nil {
			t.Fatalf("root pull %s: %v: %s", ref, err, serr)
		}
	}
	root := sizes("root", func() (string, error) {
		out, serr, err := bulwarkImages(t, dr, nil, "images", "--json")
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, serr)
		}
		return out, nil
	})
	// Keyed by the names' last element: the registry's address is the same.
	for _, tag := range []string{"owners:1", "owners:again"} {
		if root[tag] <= 0 || rootless[tag] != root[tag] {
			t.Errorf("%s: rootless size %d, root's %d; want equal and positive (listed %v and %v)", tag, rootless[tag], root[tag], rootless, root)
		}
	}
	if rootless["owners:again"] != rootless["owners:1"] {
		t.Errorf("the image of reused layers has size %d, the first %d; want equal", rootless["owners:again"], rootless["owners:1"])
	}
	for _, ref := range refs {
		if res := r.bw("rmi", ref); res.code != 0 {
			t.Errorf("rootless rmi %s: %v", ref, res)
		}
	}
}

// TestRootlessSpecImageWritesABundleTheUserRuns: `spec --image` without
// root copies the image from the account's own store with the image's
// owners as the account's containers see them (its subordinate ids on the
// host), writes a config mapping the account's ranges, and the account
// runs the bundle with runc's run and with create/start/delete.
func TestRootlessSpecImageWritesABundleTheUserRuns(t *testing.T) {
	r := newRootlessEnv(t)
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "owners:1", ownersImage(t))
	r.pull(ref)
	bundle := testrootfs.UserDir(t, r.u)
	// Root's reading of the bundle is the test's; removing it is root's
	// too (its files are the account's subordinate ids).
	t.Cleanup(func() { os.RemoveAll(bundle) })
	if res := r.bw("spec", "--image", ref, "-b", bundle); res.code != 0 {
		t.Fatalf("rootless spec --image: %v", res)
	}
	for _, c := range []struct {
		path     string
		uid, gid uint32
		mode     uint32
	}{
		{".", testrootfs.RootlessSubStart + 999, testrootfs.RootlessSubStart + 999, 0o755}, // the layer's own root is uid 1000
		{"data/user", testrootfs.RootlessSubStart + 999, testrootfs.RootlessSubStart + 999, 0o640},
		{"data/www", testrootfs.RootlessSubStart + 32, testrootfs.RootlessSubStart + 33, 0o600},
		{"data/suid", uint32(r.u.UID), uint32(r.u.GID), 0o4755},
		{"data/mail", uint32(r.u.UID), testrootfs.RootlessSubStart + 7, 0o2775},
		{"srv/db/conf", testrootfs.RootlessSubStart + 998, testrootfs.RootlessSubStart + 998, 0o640},
	} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(bundle, "rootfs", c.path), &st); err != nil {
			t.Errorf("the bundle's rootfs: %v", err)
			continue
		}
		if st.Uid != c.uid || st.Gid != c.gid || st.Mode&0o7777 != c.mode {
			t.Errorf("rootfs/%s on the host: %d:%d %o, want %d:%d %o", c.path, st.Uid, st.Gid, st.Mode&0o7777, c.uid, c.gid, c.mode)
		}
	}
	cfg := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	proc := s["process"].(map[string]any)
	proc["args"] = []string{"sh", "-c", "stat -c '%n %u %g %a' /data/user /data/www /data/high /data/mail /data/suid /data/sgid-bin; id -u"}
	if b, err = json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	res := r.bw("run", "-b", bundle, "rl-spec")
	want := strings.Join(strings.Split(ownersWant, "\n")[:6], "\n") + "\n0\n"
	if res.code != 0 || res.stdout != want {
		t.Errorf("rootless run -b of the bundle shows\n%s\nwant\n%s\n(%v)", res.stdout, want, res)
	}
	// create/start/delete, as an engine drives it: the init's output
	// goes to a file (a pipe would outlive create).
	out := filepath.Join(bundle, "out")
	if res := r.bwTo(out, "create", "-b", bundle, "rl-spec-c"); res.code != 0 {
		t.Fatalf("rootless create of the bundle: %v", res)
	}
	if res := r.bw("start", "rl-spec-c"); res.code != 0 {
		t.Fatalf("rootless start: %v", res)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(r.bw("state", "rl-spec-c").stdout, `"stopped"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the created container did not stop: %v", r.bw("state", "rl-spec-c"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res := r.bw("delete", "rl-spec-c"); res.code != 0 {
		t.Errorf("rootless delete: %v", res)
	}
	if got, _ := os.ReadFile(out); string(got) != want {
		t.Errorf("the created container printed\n%s\nwant\n%s", got, want)
	}
	// A bundle with a rootfs already is refused, and nothing is changed.
	if res := r.bw("spec", "--image", ref, "-b", bundle); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
		t.Errorf("spec --image over an existing bundle: %v", res)
	}
	if ents, _ := os.ReadDir(filepath.Join(r.home, ".local/share/bulwark/containers")); len(ents) != 0 {
		t.Errorf("spec --image left snapshots behind: %v", ents)
	}
}
