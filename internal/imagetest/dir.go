package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Stack makes an image of layers for linux/arch whose run config is c. Like
// LayerFromDir it reports errors, for the bench and the demo's builder.
func Stack(arch string, c v1.Config, layers ...v1.Layer) (v1.Image, error) {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config = c
	return mutate.ConfigFile(img, cf)
}

// LayerFromDir tars dir as one uncompressed layer owned by root, as an
// image build would: directories, regular files and symlinks, no device
// nodes. The bench uses it too, so it reports errors instead of failing a
// test.
func LayerFromDir(dir string) (v1.Layer, error) { return layerOf(dir, false, ".") }

// LayerOwnedFrom tars the paths rels of root (each with everything below
// it) as one layer whose entries keep their owners, as a real image's do:
// a distribution's tree with its service users' files.
func LayerOwnedFrom(root string, rels ...string) (v1.Layer, error) {
	return layerOf(root, true, rels...)
}

func layerOf(dir string, owners bool, rels ...string) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	walk := func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Name, h.Uname, h.Gname = rel, "", ""
		if !owners {
			h.Uid, h.Gid = 0, 0
		}
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	}
	var err error
	for _, rel := range rels {
		if err = filepath.WalkDir(filepath.Join(dir, rel), walk); err != nil {
			break
		}
	}
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("layer of %s: %w", dir, err)
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
}
