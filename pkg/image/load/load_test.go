package load_test

import (
	"archive/tar"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/pkg/image/ingest"
	"github.com/bulwark-sec/bulwark/pkg/image/load"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
)

type E = imagetest.Entry

func image(t *testing.T) v1.Image {
	return imagetest.Image(t, runtime.GOARCH,
		imagetest.Layer(t, "gzip", E{Name: "etc/", Type: tar.TypeDir}, E{Name: "etc/a", Body: "a"}),
		imagetest.Layer(t, "zstd", E{Name: "etc/.wh.a"}, E{Name: "b", Body: "b"}))
}

func dockerArchive(t *testing.T, img v1.Image, tags ...string) string {
	p := filepath.Join(t.TempDir(), "save.tar")
	refs := map[name.Reference]v1.Image{}
	for _, tg := range tags {
		r, err := name.NewTag(tg)
		if err != nil {
			t.Fatal(err)
		}
		refs[r] = img
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func ociLayout(t *testing.T, img v1.Image, ref string) string {
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarDir writes dir as a tar (an OCI archive), plus one hostile entry the
// loader must ignore.
func tarDir(t *testing.T, dir string) string {
	p := filepath.Join(t.TempDir(), "oci.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	_ = tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	_, _ = tw.Write([]byte("x"))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Size: int64(len(b)), Mode: 0o644}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	f.Close()
	return p
}

func newStore(t *testing.T) *store.Store {
	st, err := store.Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLoadFormats(t *testing.T) {
	img := image(t)
	wantID, _ := img.ConfigName()
	layoutDir := ociLayout(t, img, "example.com/app:2")
	for _, tc := range []struct {
		name, path, wantName string
	}{
		{"docker-archive", dockerArchive(t, img, "example.com/app:1", "other:latest"), "example.com/app:1"},
		{"oci layout dir", layoutDir, "example.com/app:2"},
		{"oci archive", tarDir(t, layoutDir), "example.com/app:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			ims, err := load.File(context.Background(), st, tc.path, ingest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ims) != 1 || ims[0].ID != wantID.String() {
				t.Fatalf("loaded %+v, want one image %s", ims, wantID)
			}
			got, err := st.Get(tc.wantName)
			if err != nil || got.ID != wantID.String() {
				t.Fatalf("Get(%s) = %s, %v", tc.wantName, got.ID, err)
			}
			top, _ := st.LayerPath(got.Layers[1])
			if b, err := os.ReadFile(filepath.Join(top, "b")); err != nil || string(b) != "b" {
				t.Errorf("top layer b = %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(st.Root), "escape")); err == nil {
				t.Error("the archive wrote ../escape")
			}
			if tmp, _ := os.ReadDir(filepath.Join(st.Root, "tmp")); len(tmp) != 0 {
				t.Errorf("tmp/ holds %d entries", len(tmp))
			}
		})
	}
}

func TestLoadTruncated(t *testing.T) {
	img := image(t)
	for _, tc := range []struct{ name, path string }{
		{"docker-archive", dockerArchive(t, img, "x:1")},
		{"oci archive", tarDir(t, ociLayout(t, img, "x:1"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			cut := filepath.Join(t.TempDir(), "cut.tar")
			if err := os.WriteFile(cut, b[:len(b)*2/3], 0o644); err != nil {
				t.Fatal(err)
			}
			st := newStore(t)
			if _, err := load.File(context.Background(), st, cut, ingest.Options{}); err == nil {
				t.Fatal("a truncated archive loaded")
			} else if !strings.Contains(err.Error(), cut) {
				t.Errorf("error %q does not name the archive", err)
			}
			if ims, _ := st.Images(); len(ims) != 0 {
				t.Errorf("the store lists %d images", len(ims))
			}
			if tmp, _ := os.ReadDir(filepath.Join(st.Root, "tmp")); len(tmp) != 0 {
				t.Errorf("tmp/ holds %d entries", len(tmp))
			}
		})
	}
}
