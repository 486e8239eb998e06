package pull_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/pkg/image/ingest"
	"github.com/bulwark-sec/bulwark/pkg/image/pull"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
	"github.com/bulwark-sec/bulwark/pkg/image/unpack"
)

type E = imagetest.Entry

var quick = remote.WithRetryBackoff(remote.Backoff{Duration: time.Millisecond, Steps: 1})

func pullInto(ctx context.Context, t *testing.T, st *store.Store, ref string, opts ...remote.Option) (store.Image, error) {
	t.Helper()
	unlock, err := st.Lock(false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	img, digest, err := pull.Image(ctx, ref, time.Minute, append([]remote.Option{quick}, opts...)...)
	if err != nil {
		return store.Image{}, err
	}
	n, err := pull.Name(ref)
	if err != nil {
		t.Fatal(err)
	}
	return ingest.Image(ctx, st, img, ingest.Options{Names: []string{n}, Digest: digest, Unpack: unpack.Options{Privileged: os.Geteuid() == 0}})
}

func newStore(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// consistent checks that the store holds no partial work: tmp/ empty and
// every layer an image names unpacked.
func consistent(t *testing.T, st *store.Store) {
	t.Helper()
	tmp, _ := os.ReadDir(filepath.Join(st.Root, "tmp"))
	if len(tmp) != 0 {
		t.Errorf("tmp/ holds %d entries after the pull returned", len(tmp))
	}
	ims, err := st.Images()
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range ims {
		for _, l := range im.Layers {
			if !st.HasLayer(l) {
				t.Errorf("image %s names layer %s, which is not unpacked", im.ID, l)
			}
		}
	}
}

func baseLayers(t *testing.T) []v1.Layer {
	return []v1.Layer{
		imagetest.Layer(t, "gzip",
			E{Name: "etc/", Type: tar.TypeDir},
			E{Name: "etc/os-release", Body: "ID=test\n"},
			E{Name: "etc/old", Body: "old"},
			E{Name: "var/", Type: tar.TypeDir},
			E{Name: "var/cache/", Type: tar.TypeDir},
			E{Name: "var/cache/x", Body: "x"},
		),
		imagetest.Layer(t, "zstd",
			E{Name: "etc/.wh.old"},
			E{Name: "var/cache/.wh..wh..opq"},
			E{Name: "bin/", Type: tar.TypeDir},
			E{Name: "bin/busybox", Body: "#!", Mode: 0o755},
			E{Name: "bin/sh", Type: tar.TypeLink, Link: "bin/busybox"},
		),
	}
}

func TestPullMultiArchZstdWhiteouts(t *testing.T) {
	host := imagetest.Registry(t, nil)
	layers := baseLayers(t)
	idx := imagetest.Index(t, map[string]v1.Image{
		runtime.GOARCH: imagetest.Image(t, runtime.GOARCH, layers...),
		"s390x":        imagetest.Image(t, "s390x", imagetest.Layer(t, "gzip", E{Name: "wrong", Body: "arch"})),
	})
	ref, _ := name.ParseReference(host + "/multi:v1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	im, err := pullInto(context.Background(), t, st, ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if im.Platform != "linux/"+runtime.GOARCH || len(im.Layers) != 2 {
		t.Fatalf("pulled %s with %d layers, want linux/%s with 2", im.Platform, len(im.Layers), runtime.GOARCH)
	}
	got, err := st.Get(host + "/multi:v1")
	if err != nil || got.ID != im.ID {
		t.Fatalf("Get by name: %v %v", got.ID, err)
	}
	raw, err := st.Blob(got.Config)
	var cfg v1.ConfigFile
	if err == nil {
		err = json.Unmarshal(raw, &cfg)
	}
	if err != nil || cfg.Config.WorkingDir != "/work" {
		t.Fatalf("config: %v %+v", err, cfg)
	}
	top, _ := st.LayerPath(im.Layers[1])
	var s unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "etc/old"), &s); err != nil || s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 {
		t.Errorf("zstd layer: etc/old is not a whiteout (%v, mode %o)", err, s.Mode)
	}
	var a, b unix.Stat_t
	_ = unix.Lstat(filepath.Join(top, "bin/busybox"), &a)
	_ = unix.Lstat(filepath.Join(top, "bin/sh"), &b)
	if a.Ino == 0 || a.Ino != b.Ino {
		t.Errorf("bin/sh is not a hardlink of bin/busybox")
	}
	// A second pull of the same layers unpacks nothing new.
	other := imagetest.Push(t, host, "same:v1", imagetest.Image(t, runtime.GOARCH, layers...))
	var lines []string
	unlock, _ := st.Lock(false)
	img, d, err := pull.Image(context.Background(), other, time.Minute, quick)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Image(context.Background(), st, img, ingest.Options{Names: []string{"same"}, Digest: d, Progress: func(f string, a ...any) {
		lines = append(lines, f)
	}}); err != nil {
		t.Fatal(err)
	}
	unlock()
	if n := strings.Count(strings.Join(lines, "\n"), "already present"); n != 2 {
		t.Errorf("second image with the same layers: %d layers reused, want 2 (%q)", n, lines)
	}
	consistent(t, st)

	// rmi keeps shared layers until the last image using them goes.
	if _, err := st.Remove(host + "/multi:v1"); err != nil {
		t.Fatal(err)
	}
	if _, freed, err := st.Prune(false, nil); err != nil || freed != 0 {
		t.Fatalf("prune with the layers still used: freed %d, %v", freed, err)
	}
	if _, err := st.Remove("same"); err != nil {
		t.Fatal(err)
	}
	if _, freed, err := st.Prune(false, nil); err != nil || freed != 2 {
		t.Fatalf("prune after the last image: freed %d, %v; want 2", freed, err)
	}
	if _, err := st.Get("same"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after rmi: %v, want ErrNotFound", err)
	}
}

// flip corrupts the first byte of every matching blob it serves.
type flip struct {
	http.ResponseWriter
	done bool
}

func (f *flip) Write(p []byte) (int, error) {
	if !f.done && len(p) > 0 {
		q := append([]byte(nil), p...)
		q[0] ^= 0xff
		f.done = true
		return f.ResponseWriter.Write(q)
	}
	return f.ResponseWriter.Write(p)
}

// onBlob answers the GETs of the blob a case targets with serve (h is the
// registry itself) and passes every other request through.
func onBlob(serve func(w http.ResponseWriter, r *http.Request, h http.Handler)) func(string) func(http.Handler) http.Handler {
	return func(d string) func(http.Handler) http.Handler {
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if imagetest.IsBlobGet(r, d) {
					serve(w, r, h)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	}
}

func TestPullHostileRegistry(t *testing.T) {
	bomb := imagetest.Layer(t, "gzip", E{Name: "big", Body: strings.Repeat("0", 4<<20)})
	escape := imagetest.Layer(t, "gzip", E{Name: "l", Type: tar.TypeSymlink, Link: "/"}, E{Name: "l/tmp/pwned", Body: "x"})
	good := imagetest.Layer(t, "gzip", E{Name: "ok", Body: "ok"})
	for _, tc := range []struct {
		name  string
		layer v1.Layer
		wrap  func(target string) func(http.Handler) http.Handler
		want  string
	}{
		{"lying registry (digest mismatch)", good, onBlob(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			h.ServeHTTP(&flip{ResponseWriter: w}, r)
		}), "verifying sha256"},
		{"registry answers 500", good, onBlob(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}), "500"},
		{"truncated blob", good, onBlob(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			rec := &bytes.Buffer{}
			h.ServeHTTP(&capture{ResponseWriter: w, buf: rec}, r)
			_, _ = w.Write(rec.Bytes()[:rec.Len()/2])
		}), "layer 2"},
		{"registry hangs in a blob", good, onBlob(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			rec := &bytes.Buffer{}
			h.ServeHTTP(&capture{ResponseWriter: w, buf: rec}, r)
			_, _ = w.Write(rec.Bytes()[:rec.Len()/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}), "sent nothing"},
		{"registry never answers", good, onBlob(func(w http.ResponseWriter, r *http.Request, h http.Handler) {
			<-r.Context().Done()
		}), "sent nothing"},
		{"registry hangs in the manifest", good, func(string) func(http.Handler) http.Handler {
			return func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/") {
						<-r.Context().Done()
						return
					}
					h.ServeHTTP(w, r)
				})
			}
		}, "manifest v1: the registry sent nothing for 300ms"},
		{"decompression bomb", bomb, nil, "unpack cap"},
		{"symlink then file", escape, nil, "pwned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := tc.layer.Digest()
			var wrap func(http.Handler) http.Handler
			if tc.wrap != nil {
				wrap = tc.wrap(d.String())
			}
			host := imagetest.Registry(t, wrap)
			first := imagetest.Layer(t, "gzip", E{Name: "first", Body: "1"})
			ref := imagetest.Push(t, host, "bad:v1", imagetest.Image(t, runtime.GOARCH, first, tc.layer))
			st := newStore(t)
			unlock, _ := st.Lock(false)
			img, digest, err := pull.Image(context.Background(), ref, 300*time.Millisecond, quick)
			if err == nil {
				_, err = ingest.Image(context.Background(), st, img, ingest.Options{Names: []string{"bad"}, Digest: digest,
					Unpack: unpack.Options{MaxSize: 1 << 20, Privileged: true}})
			}
			unlock()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			if _, err := os.Stat("/tmp/pwned"); err == nil {
				t.Fatal("the layer wrote /tmp/pwned")
			}
			if ims, _ := st.Images(); len(ims) != 0 {
				t.Errorf("the store lists %d images after a failed pull", len(ims))
			}
			diffs, _ := os.ReadDir(filepath.Join(st.Root, "layers/sha256"))
			if len(diffs) > 1 {
				t.Errorf("layers/ holds %d layers, want at most the good first one", len(diffs))
			}
			consistent(t, st)
		})
	}
}

type capture struct {
	http.ResponseWriter
	buf *bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) { return c.buf.Write(p) }

// TestPullInterruptedThenRetried cancels a pull inside its second layer
// and checks that a retry reuses the first and completes.
func TestPullInterruptedThenRetried(t *testing.T) {
	first := imagetest.Layer(t, "gzip", E{Name: "first", Body: "1"})
	second := imagetest.Layer(t, "gzip", E{Name: "second", Body: strings.Repeat("2", 1<<20)})
	d2, _ := second.Digest()
	ctx, cancel := context.WithCancel(context.Background())
	stall := true
	host := imagetest.Registry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if stall && imagetest.IsBlobGet(r, d2.String()) {
				rec := &bytes.Buffer{}
				h.ServeHTTP(&capture{ResponseWriter: w, buf: rec}, r)
				w.Header().Set("Content-Length", "")
				_, _ = w.Write(rec.Bytes()[:rec.Len()/2])
				w.(http.Flusher).Flush()
				cancel()
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := imagetest.Push(t, host, "slow:v1", imagetest.Image(t, runtime.GOARCH, first, second))
	st := newStore(t)
	if _, err := pullInto(ctx, t, st, ref); err == nil || !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "cancel") {
		t.Fatalf("interrupted pull: err = %v, want a cancel", err)
	}
	consistent(t, st)
	if ims, _ := st.Images(); len(ims) != 0 {
		t.Fatalf("an interrupted pull listed an image")
	}
	stall = false
	im, err := pullInto(context.Background(), t, st, ref)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	p, _ := st.LayerPath(im.Layers[1])
	if b, err := os.ReadFile(filepath.Join(p, "second")); err != nil || len(b) != 1<<20 {
		t.Fatalf("retry: second layer incomplete (%d bytes, %v)", len(b), err)
	}
	consistent(t, st)
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"alpine":                              "alpine:latest",
		"docker.io/library/alpine:3":          "alpine:3",
		"quay.io/a/b":                         "quay.io/a/b:latest",
		"127.0.0.1:5000/x:y":                  "127.0.0.1:5000/x:y",
		"user/app:1":                          "user/app:1",
		"a@sha256:" + strings.Repeat("a", 64): "a@sha256:" + strings.Repeat("a", 64),
	} {
		if got, err := pull.Name(in); err != nil || got != want {
			t.Errorf("Name(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := pull.Name("UPPER/case"); err == nil {
		t.Error("Name accepted an invalid reference")
	}
}
