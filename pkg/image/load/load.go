// Package load reads images from archives into the store: a docker-archive
// (`docker save`), an OCI image layout directory, or an OCI archive (that
// layout as a tar: `podman save --format oci-archive`, `skopeo copy oci-archive:`).
//
// The threat is a malicious archive: names that escape, a truncated
// stream, layers that do not match their digests. An OCI archive is
// extracted into a private temp dir of the store taking only the files the
// layout defines (oci-layout, index.json, blobs/sha256/<64 hex>) as regular
// files; every layer then goes through pkg/image/ingest, which verifies
// digests and unpacks safely. Do not use it for registries (pkg/image/pull).
package load

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/pkg/image/ingest"
	"github.com/bulwark-sec/bulwark/pkg/image/pull"
	"github.com/bulwark-sec/bulwark/pkg/image/store"
)

// File loads every image in the archive or layout at p into st (whose
// lock the caller holds shared). opts.Names is ignored: names come from
// the archive.
func File(ctx context.Context, st *store.Store, p string, opts ingest.Options) ([]store.Image, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if fi.IsDir() {
		return fromLayout(ctx, st, p, p, opts)
	}
	kind, err := sniff(p)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", p, err)
	}
	switch kind {
	case "docker":
		return fromDockerArchive(ctx, st, p, opts)
	case "oci":
		tmp, err := st.TempDir("oci-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := extractLayout(p, tmp); err != nil {
			return nil, fmt.Errorf("load %s: %w", p, err)
		}
		return fromLayout(ctx, st, p, tmp, opts)
	}
	return nil, fmt.Errorf("load %s: neither a docker-archive (manifest.json) nor an OCI archive (oci-layout, index.json)", p)
}

func clean(n string) string { return path.Clean("/" + n)[1:] }

// sniff reads the tar's names: a manifest.json makes it a docker-archive
// (Docker 25+ writes both, and its manifest.json carries the tags).
func sniff(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	oci := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read tar (truncated or not a tar?): %w", err)
		}
		switch clean(h.Name) {
		case "manifest.json":
			return "docker", nil
		case "oci-layout":
			oci = true
		}
	}
	if oci {
		return "oci", nil
	}
	return "", nil
}

// layoutFile reports the names an OCI layout defines.
func layoutFile(n string) bool {
	if n == "oci-layout" || n == "index.json" {
		return true
	}
	h, ok := strings.CutPrefix(n, "blobs/")
	return ok && store.IsDigest(strings.Replace(h, "/", ":", 1))
}

// extractLayout copies the layout's files, and nothing else, into dir.
func extractLayout(p, dir string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Join(dir, "blobs/sha256"), 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar (truncated?): %w", err)
		}
		n := clean(h.Name)
		if h.Typeflag != tar.TypeReg || !layoutFile(n) {
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", h.Name, err)
		}
	}
}

func fromDockerArchive(ctx context.Context, st *store.Store, p string, opts ingest.Options) ([]store.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("load %s: manifest.json: %w", p, err)
	}
	var out []store.Image
	for i, d := range m {
		var tag *name.Tag
		var names []string
		for _, t := range d.RepoTags {
			n, err := pull.Name(t)
			if err != nil {
				return out, fmt.Errorf("load %s: manifest.json[%d].RepoTags: %w", p, i, err)
			}
			names = append(names, n)
		}
		if len(d.RepoTags) > 0 {
			t, err := name.NewTag(d.RepoTags[0])
			if err != nil {
				return out, fmt.Errorf("load %s: manifest.json[%d].RepoTags: %w", p, i, err)
			}
			tag = &t
		} else if len(m) > 1 {
			return out, fmt.Errorf("load %s: manifest.json[%d] has no RepoTags, and there is more than one image", p, i)
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return out, fmt.Errorf("load %s: image %d: %w", p, i, err)
		}
		o := opts
		o.Names, o.Digest, o.Uncompressed = names, "", true
		if len(names) == 0 {
			o.Names = nil
		}
		im, err := ingest.Image(ctx, st, img, o)
		if err != nil {
			return out, fmt.Errorf("load %s: %w", p, err)
		}
		out = append(out, im)
	}
	return out, nil
}

// Annotations naming an image in an OCI index.
const (
	annotationContainerd = "io.containerd.image.name"
	annotationRefName    = "org.opencontainers.image.ref.name"
)

func fromLayout(ctx context.Context, st *store.Store, what, dir string, opts ingest.Options) ([]store.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: OCI layout: %w", what, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("load %s: index.json: %w", what, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("load %s: index.json: %w", what, err)
	}
	var out []store.Image
	host := pull.Platform()
	for i, d := range im.Manifests {
		var img v1.Image
		switch {
		case d.MediaType.IsImage():
			if d.Platform != nil && !d.Platform.Satisfies(host) {
				continue
			}
			img, err = idx.Image(d.Digest)
		case d.MediaType.IsIndex():
			img, err = childFor(idx, d.Digest, host)
		default:
			continue
		}
		if err != nil {
			return out, fmt.Errorf("load %s: index.json manifests[%d] (%s): %w", what, i, d.Digest, err)
		}
		o := opts
		o.Names, o.Digest, o.Uncompressed = nil, "", false
		// ref.name is often a bare tag ("latest"): a name only with a
		// repository in it.
		ann := d.Annotations[annotationContainerd]
		if r := d.Annotations[annotationRefName]; ann == "" && strings.ContainsAny(r, "/:") {
			ann = r
		}
		if ann != "" {
			if n, err := pull.Name(ann); err == nil {
				o.Names = []string{n}
			}
		}
		got, err := ingest.Image(ctx, st, img, o)
		if err != nil {
			return out, fmt.Errorf("load %s: %w", what, err)
		}
		out = append(out, got)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load %s: no image for %s in index.json", what, host)
	}
	return out, nil
}

func childFor(idx v1.ImageIndex, d v1.Hash, host v1.Platform) (v1.Image, error) {
	child, err := idx.ImageIndex(d)
	if err != nil {
		return nil, err
	}
	m, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, c := range m.Manifests {
		if c.MediaType.IsImage() && c.Platform != nil && c.Platform.Satisfies(host) {
			return child.Image(c.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s in the index", host)
}
