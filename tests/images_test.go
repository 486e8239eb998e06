package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

type imageEntry = imagetest.Entry

func testImage(t *testing.T) v1.Image {
	return imagetest.Image(t, runtime.GOARCH,
		imagetest.Layer(t, "gzip", imageEntry{Name: "etc/", Type: tar.TypeDir}, imageEntry{Name: "etc/hostname", Body: "img\n"}),
		imagetest.Layer(t, "zstd", imageEntry{Name: "big", Body: strings.Repeat("b", 2<<20)}))
}

// bulwarkImages runs bulwark with a private data root.
func bulwarkImages(t *testing.T, dataRoot string, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bulwarkBin, append([]string{"--data-root", dataRoot}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	return out.String(), errb.String(), err
}

type listed struct {
	ID     string   `json:"id"`
	Names  []string `json:"names"`
	Layers []string `json:"layers"`
}

func listImages(t *testing.T, dataRoot string) []listed {
	t.Helper()
	out, serr, err := bulwarkImages(t, dataRoot, nil, "images", "--json")
	if err != nil {
		t.Fatalf("images --json: %v: %s", err, serr)
	}
	var ims []listed
	if err := json.Unmarshal([]byte(out), &ims); err != nil {
		t.Fatalf("images --json: %v: %q", err, out)
	}
	return ims
}

// layerDirs counts the committed layers (a layer being unpacked or
// removed sits beside them under a name starting with a dot).
func layerDirs(t *testing.T, dataRoot string) int {
	ents, _ := os.ReadDir(filepath.Join(dataRoot, "images/layers/sha256"))
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}

// storeLeftovers lists what a failed or killed command left in the image
// store: tmp/ entries and half-unpacked or half-removed layers.
func storeLeftovers(dataRoot string) []string {
	var left []string
	ents, _ := os.ReadDir(filepath.Join(dataRoot, "images/tmp"))
	for _, e := range ents {
		left = append(left, "tmp/"+e.Name())
	}
	ents, _ = os.ReadDir(filepath.Join(dataRoot, "images/layers/sha256"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			left = append(left, "layers/sha256/"+e.Name())
		}
	}
	return left
}

func TestImagePullListInspectRemove(t *testing.T) {
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "app:1", testImage(t))
	dr := t.TempDir()
	out, serr, err := bulwarkImages(t, dr, nil, "pull", ref)
	if err != nil {
		t.Fatalf("pull: %v: %s", err, serr)
	}
	if strings.TrimSpace(out) != host+"/app:1" || !strings.Contains(serr, "layer 2/2") {
		t.Errorf("pull printed %q, progress %q", out, serr)
	}
	ims := listImages(t, dr)
	if len(ims) != 1 || len(ims[0].Layers) != 2 {
		t.Fatalf("images: %+v, want one image of 2 layers", ims)
	}
	out, serr, err = bulwarkImages(t, dr, nil, "image", "inspect", host+"/app:1")
	if err != nil || !strings.Contains(out, `"WorkingDir": "/work"`) {
		t.Fatalf("image inspect: %v: %s%s", err, out, serr)
	}
	if fi, err := os.Stat(filepath.Join(dr, "images")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("store mode %v, %v; want 0700 (layers hold setuid files)", fi.Mode(), err)
	}
	out, serr, err = bulwarkImages(t, dr, nil, "rmi", host+"/app:1")
	if err != nil || !strings.Contains(out, "Deleted: "+ims[0].ID) {
		t.Fatalf("rmi: %v: %s%s", err, out, serr)
	}
	if n := len(listImages(t, dr)); n != 0 || layerDirs(t, dr) != 0 {
		t.Errorf("after rmi: %d images, %d layers left", n, layerDirs(t, dr))
	}
}

func TestImageBadInputFailsClearly(t *testing.T) {
	host := imagetest.Registry(t, nil)
	dr := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", host + "/missing:1"}, "missing"},
		{[]string{"pull", "UPPER/case"}, "UPPER/case"},
		{[]string{"rmi", "nothere:1"}, "nothere:1"},
		{[]string{"image", "inspect", "nothere:1"}, "nothere:1"},
		{[]string{"load", "-i", "/nonexistent.tar"}, "/nonexistent.tar"},
	} {
		_, serr, err := bulwarkImages(t, dr, nil, tc.args...)
		if err == nil || !strings.Contains(serr, tc.want) {
			t.Errorf("bulwark %v: err %v, stderr %q; want a failure naming %q", tc.args, err, serr, tc.want)
		}
	}
	_, serr, err := bulwarkImages(t, dr, []byte("not a tar at all, truncated"), "load")
	if err == nil || !strings.Contains(serr, "stdin") {
		t.Errorf("load of garbage from stdin: %v %q", err, serr)
	}
	if n := len(listImages(t, dr)); n != 0 || layerDirs(t, dr) != 0 {
		t.Errorf("after bad input: %d images, %d layers", n, layerDirs(t, dr))
	}
}

func TestImageLoadDockerArchiveFromStdin(t *testing.T) {
	tag, _ := name.NewTag("example.com/saved:2")
	var buf bytes.Buffer
	if err := tarball.Write(tag, testImage(t), &buf); err != nil {
		t.Fatal(err)
	}
	dr := t.TempDir()
	out, serr, err := bulwarkImages(t, dr, buf.Bytes(), "load", "--quiet")
	if err != nil || strings.TrimSpace(out) != "Loaded image: example.com/saved:2" || serr != "" {
		t.Fatalf("load: %v: %q %q", err, out, serr)
	}
	if ims := listImages(t, dr); len(ims) != 1 || ims[0].Names[0] != "example.com/saved:2" {
		t.Fatalf("images after load: %+v", ims)
	}
}

// TestImagePullKilledThenRetried kills `bulwark pull` in the middle of a
// layer: the store lists nothing and holds only whole layers, and the
// next pull completes.
func TestImagePullKilledThenRetried(t *testing.T) {
	img := testImage(t)
	layers, _ := img.Layers()
	d2, _ := layers[1].Digest()
	var stall atomic.Bool
	stall.Store(true)
	stalled := make(chan struct{}, 1)
	host := imagetest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stall.Load() && imagetest.IsBlobGet(r, d2.String()) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(bytes.Repeat([]byte{0x28}, 1)) // a zstd magic's first byte, then nothing
				w.(http.Flusher).Flush()
				stalled <- struct{}{}
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := imagetest.Push(t, host, "killed:1", img)
	dr := t.TempDir()
	cmd := exec.Command(bulwarkBin, "--data-root", dr, "pull", ref)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the pull never reached the second layer")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := len(listImages(t, dr)); n != 0 {
		t.Fatalf("a killed pull left %d images listed", n)
	}
	if n := layerDirs(t, dr); n != 1 {
		t.Errorf("a pull killed in layer 2 left %d layers, want the first, whole", n)
	}
	stall.Store(false)
	if _, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref); err != nil {
		t.Fatalf("retry: %v: %s", err, serr)
	}
	if ims := listImages(t, dr); len(ims) != 1 || layerDirs(t, dr) != 2 {
		t.Fatalf("after the retry: %d images, %d layers", len(ims), layerDirs(t, dr))
	}
	if left := storeLeftovers(dr); len(left) != 0 {
		t.Errorf("the store still holds the killed pull's %v", left)
	}
}

// A registry that stops sending, in the manifest or partway through a
// layer, fails the pull after --timeout (or BULWARK_PULL_TIMEOUT), naming
// the image and the manifest or layer it stalled in, with nothing listed
// and nothing left in tmp/; a timeout that is not a duration is refused.
func TestImagePullFromAHungRegistryFailsClearly(t *testing.T) {
	img := testImage(t)
	layers, _ := img.Layers()
	d2, _ := layers[1].Digest()
	hangManifest := atomic.Bool{}
	host := imagetest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case hangManifest.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/"):
				<-r.Context().Done()
				return
			case imagetest.IsBlobGet(r, d2.String()):
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte{0x28})
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := imagetest.Push(t, host, "hung:1", img)
	for _, tc := range []struct {
		name     string
		manifest bool
		flags    []string
		env      string
		want     []string
	}{
		{"in a layer, --timeout", false, []string{"--timeout", "1s"}, "", []string{"hung:1", "layer 2", "blob " + d2.String(), "sent nothing for 1s"}},
		{"in a layer, BULWARK_PULL_TIMEOUT", false, nil, "BULWARK_PULL_TIMEOUT=1s", []string{"hung:1", "layer 2", "sent nothing for 1s"}},
		{"in the manifest", true, []string{"--timeout", "1s"}, "", []string{"hung:1", "manifest 1", "sent nothing for 1s", "--timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hangManifest.Store(tc.manifest)
			dr := t.TempDir()
			cmd := exec.Command(bulwarkBin, append(append([]string{"--data-root", dr, "pull", "-q"}, tc.flags...), ref)...)
			cmd.Env = os.Environ()
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			var serr bytes.Buffer
			cmd.Stderr = &serr
			start := time.Now()
			if err := runWithTimeout(cmd, 60*time.Second); err == nil {
				t.Fatal("a pull from a hung registry succeeded")
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the pull took %v to give up", d)
			}
			for _, want := range tc.want {
				if !strings.Contains(serr.String(), want) {
					t.Errorf("stderr %q does not mention %q", serr.String(), want)
				}
			}
			if n := len(listImages(t, dr)); n != 0 {
				t.Errorf("%d images listed after a failed pull", n)
			}
			if left := storeLeftovers(dr); len(left) != 0 {
				t.Errorf("the store holds %v after a failed pull", left)
			}
		})
	}
	for _, bad := range []string{"0s", "soon"} {
		_, serr, err := bulwarkImages(t, t.TempDir(), nil, "pull", "--timeout", bad, ref)
		if err == nil || !strings.Contains(serr, "timeout") {
			t.Errorf("pull --timeout %s: err %v, stderr %q; want a refusal naming --timeout", bad, err, serr)
		}
	}
}

// A data root that fills during a pull: the error names the image, the
// layer and the full disk; the store lists nothing and holds no partial
// layer; once there is room the same pull completes.
func TestImagePullIntoAFullDiskFailsClearly(t *testing.T) {
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "full:1", testImage(t)) // layer 2 unpacks to 2 MiB
	dr := t.TempDir()
	if err := unix.Mount("tmpfs", dr, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("no tmpfs for a small data root: %v", err)
	}
	defer unix.Unmount(dr, unix.MNT_DETACH)
	_, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref)
	if err == nil {
		t.Fatal("a pull into a full data root succeeded")
	}
	for _, want := range []string{"full:1", "layer 2", "no space left"} {
		if !strings.Contains(serr, want) {
			t.Errorf("stderr %q does not mention %q", serr, want)
		}
	}
	if n := len(listImages(t, dr)); n != 0 {
		t.Errorf("%d images listed after a failed pull", n)
	}
	if left := storeLeftovers(dr); len(left) != 0 {
		t.Errorf("the store holds %v after a failed pull", left)
	}
	if err := unix.Mount("", dr, "", unix.MS_REMOUNT, "size=16m"); err != nil {
		t.Fatal(err)
	}
	if _, serr, err := bulwarkImages(t, dr, nil, "pull", "-q", ref); err != nil {
		t.Fatalf("the pull once there is room: %v: %s", err, serr)
	}
	if n := len(listImages(t, dr)); n != 1 {
		t.Errorf("%d images listed after the pull", n)
	}
}

// On a terminal a pull draws a bar per layer, ending in "done"; --quiet
// draws nothing; off a terminal it prints lines (the other pull tests).
func TestImagePullDrawsBarsOnATerminal(t *testing.T) {
	host := imagetest.Registry(t, nil)
	ref := imagetest.Push(t, host, "bars:1", testImage(t))
	for _, quiet := range []bool{false, true} {
		master, slave := openPty(t)
		// A terminal of no width gets no bars: give it one.
		if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 100}); err != nil {
			t.Fatal(err)
		}
		args := []string{"--data-root", t.TempDir(), "pull", ref}
		if quiet {
			args = append(args, "--quiet")
		}
		cmd := exec.Command(bulwarkBin, args...)
		cmd.Stderr = slave
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := runWithTimeout(cmd, 60*time.Second); err != nil {
			t.Fatalf("pull on a terminal (quiet %v): %v", quiet, err)
		}
		slave.Close()
		var tty bytes.Buffer
		_, _ = io.Copy(&tty, master) // EIO once the slave is closed and drained
		got := tty.String()
		if quiet {
			if got != "" {
				t.Errorf("pull --quiet drew %q", got)
			}
			continue
		}
		for _, want := range []string{"layer 1/2", "layer 2/2", "done", "[==="} {
			if !strings.Contains(got, want) {
				t.Errorf("the terminal shows %q, without %q", got, want)
			}
		}
		if strings.TrimSpace(out.String()) != host+"/bars:1" {
			t.Errorf("stdout %q", out.String())
		}
	}
}
