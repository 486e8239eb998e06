// Command mkrootfs builds the demo and test rootfs: Debian's static busybox
// plus the project's static Go payloads. No registry is needed. With
// -image it also writes the rootfs as a one-layer image (a docker-archive,
// what `docker save` writes) named -name, for `bulwark load`: the demo
// runs an image as a person would, on a machine that may have no registry
// to pull from.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func main() {
	archive := flag.String("image", "", "also write the rootfs as an image archive here")
	ref := flag.String("name", "bulwark.local/demo:1", "the image's name in the archive")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkrootfs [-image ARCHIVE [-name NAME]] DIR")
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	dir := flag.Arg(0)
	if err := testrootfs.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "mkrootfs:", err)
		os.Exit(1)
	}
	if *archive != "" {
		if err := writeImage(dir, *archive, *ref); err != nil {
			fmt.Fprintln(os.Stderr, "mkrootfs:", err)
			os.Exit(1)
		}
	}
}

// writeImage writes dir as the single layer of an image whose own
// command is the probe.
func writeImage(dir, archive, ref string) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("-name %q: %w", ref, err)
	}
	layer, err := imagetest.LayerFromDir(dir)
	if err != nil {
		return err
	}
	img, err := imagetest.Stack(runtime.GOARCH, v1.Config{
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd: []string{"/usr/local/bin/probe", "-text"},
	}, layer)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return fmt.Errorf("-image %s: %w", archive, err)
	}
	return nil
}
