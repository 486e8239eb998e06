// Package imagetest builds images and runs registries for the image tests:
// layers from a list of tar entries (whiteouts, hardlinks, hostile names),
// images and multi-arch indexes from them, and a registry on 127.0.0.1 in
// the test process, optionally behind a handler that misbehaves.
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one tar entry; Type 0 is a regular file. Uid and Gid are its
// owner (0 for root).
type Entry struct {
	Name, Body, Link string
	Type             byte
	Mode             int64
	Uid, Gid         int
}

// Tar writes entries as an uncompressed tar.
func Tar(t testing.TB, ents ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Link, Mode: e.Mode, Uid: e.Uid, Gid: e.Gid}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.Body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer makes a layer of entries, gzip or zstd ("zstd") compressed.
func Layer(t testing.TB, comp string, ents ...Entry) v1.Layer {
	t.Helper()
	b := Tar(t, ents...)
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	opts := []tarball.LayerOption{}
	if comp == "zstd" {
		opts = append(opts, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	}
	l, err := tarball.LayerFromOpener(opener, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers for arch, with a config carrying env and workdir.
func Image(t testing.TB, arch string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := Stack(arch, v1.Config{
		Env:        []string{"PATH=/bin", "IMAGE_ARCH=" + arch},
		WorkingDir: "/work",
		Cmd:        []string{"/bin/sh"},
	}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Index makes a multi-arch index of one image per arch.
func Index(t testing.TB, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
	for arch, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	return idx
}

// Registry serves a registry on 127.0.0.1 and returns its host:port.
// wrap, if not nil, sits in front of it (to lie, fail or stall).
func Registry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// IsBlobGet reports a GET of a blob (not a manifest) whose digest is d.
func IsBlobGet(r *http.Request, d string) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && (d == "" || strings.HasSuffix(r.URL.Path, d))
}

// Push writes img to host/repo and returns the full reference.
func Push(t testing.TB, host, repo string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}
