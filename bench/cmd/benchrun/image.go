package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

// benchImage is the bench rootfs as an image in a data root of its own,
// for `bulwark run IMAGE`: the same files as ROOTFS, so the two rows
// differ only in what the image path adds (the store lookup, the overlay
// snapshot over idmapped layers, its teardown).
const benchImage = "bench.local/rootfs:1"

// imageDataRoot loads benchImage into dataRoot with rt's binary.
func (b *bench) imageDataRoot(rt *rtime, dataRoot string) error {
	layer, err := imagetest.LayerFromDir(b.rootfs)
	if err != nil {
		return fmt.Errorf("bench image layer: %w", err)
	}
	img, err := imagetest.Stack(runtime.GOARCH, v1.Config{Cmd: []string{"/bin/true"}}, layer)
	if err != nil {
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
