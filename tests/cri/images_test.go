package cri

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	podImage   = "localhost/bwtest/pod:1"
	pauseImage = "localhost/bwtest/pause:1"
)

// pauseCmd is the sandbox's process: it holds the pod's namespaces and
// exits on SIGTERM, as registry.k8s.io/pause does. It waits on tail, not
// sleep: a container in the pod's PID namespace sees it, and critest's
// "execSync with timeout" takes any process named sleep for the exec it
// timed out.
var pauseCmd = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do tail -f /dev/null & wait $!; done"}

// imageSpec is an image made of the test rootfs (or base, a tar of one)
// plus optional layers.
type imageSpec struct {
	cmd   []string
	user  string
	base  string
	extra []v1.Layer
}

// rootfsImage builds an image of the test rootfs with the given config.
func rootfsImage(s imageSpec) (v1.Image, error) {
	tarPath := rootfsTar
	if s.base != "" {
		tarPath = s.base
	}
	base, err := tarball.LayerFromFile(tarPath)
	if err != nil {
		return nil, fmt.Errorf("rootfs layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, append([]v1.Layer{base}, s.extra...)...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = s.cmd
	cf.Config.User = s.user
	return mutate.ConfigFile(img, cf)
}

// writeArchive writes the images as one docker-archive tar, the input of
// `ctr images import`.
func writeArchive(path string, imgs map[string]imageSpec) error {
	refs := map[name.Reference]v1.Image{}
	for ref, s := range imgs {
		r, err := name.ParseReference(ref)
		if err != nil {
			return err
		}
		img, err := rootfsImage(s)
		if err != nil {
			return err
		}
		refs[r] = img
	}
	return tarball.MultiRefWriteToFile(path, refs)
}
