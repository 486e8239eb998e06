package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// benchImage is the bench rootfs as an image in a data root of its own,
// for `bulwark run IMAGE`: the same files as ROOTFS, so the two rows
// differ only in what the image path adds (the store lookup, the overlay
// snapshot over idmapped layers, its teardown).
const benchImage = "bench.local/rootfs:1"

// imageDataRoot loads benchImage into dataRoot with rt's binary.
func (b *bench) imageDataRoot(rt *rtime, dataRoot string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(b.rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == b.rootfs {
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
		rel, _ := filepath.Rel(b.rootfs, p)
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = rel, 0, 0, "", ""
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
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		return fmt.Errorf("bench image layer: %w", err)
	}
	raw := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"/bin/true"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(benchImage)
	if err != nil {
		return err
	}
	archive := filepath.Join(b.work, "bench-image.tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return err
	}
	defer os.Remove(archive)
	if r := run(b.work, rt.bin, "--data-root", dataRoot, "load", "-q", "-i", archive); !r.ok() {
		return fmt.Errorf("bulwark load: %s", r.err())
	}
	return nil
}
