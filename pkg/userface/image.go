package userface

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/snapshot"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// image mounts o.Image's snapshot for container id, owned by the container
// (unmounted and removed at its delete), and returns a copy of o that runs
// it: the snapshot as rootfs, the user namespace range the snapshot is
// idmapped to, and the image's Entrypoint/Cmd, Env, WorkingDir and User
// under what the person gave.
func (h *host) image(o *Options, id string) (*Options, error) {
	in, err := image.Inspect(o.DataRoot, o.Image)
	if err != nil {
		return nil, err
	}
	r := *o
	var rg userns.Range
	if r.UsernsRange == "" {
		pool := userns.Default()
		if rg, err = pool.Allocate(h.stateDir); err != nil {
			return nil, fmt.Errorf("user namespace range: %w", err)
		}
		h.own(container.Owned{Kind: container.OwnedUsernsRange, Path: pool.Dir})
		r.UsernsRange = fmt.Sprintf("%d:%d", rg.HostID, rg.Size)
	} else if rg, err = userns.ParseRange(r.UsernsRange); err != nil {
		return nil, fmt.Errorf("--userns-range %q: %w", r.UsernsRange, err)
	}
	// Under the data root, on disk; traversable so that the container's
	// root reaches its rootfs, not listable.
	parent := image.SnapshotsDir(r.DataRoot)
	for _, d := range []string{r.DataRoot, parent} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("image %s: snapshot: %w", r.Image, err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return nil, fmt.Errorf("image %s: snapshot: %w", r.Image, err)
		}
	}
	sum := sha256.Sum256([]byte(h.stateDir))
	dir := filepath.Join(parent, id+"-"+hex.EncodeToString(sum[:4]))
	h.own(container.Owned{Kind: container.OwnedMount, Path: filepath.Join(dir, "rootfs")},
		container.Owned{Kind: container.OwnedDir, Path: dir},
		container.Owned{Kind: container.OwnedSharedDir, Path: parent})
	var dirs []string
	for _, l := range in.Layers {
		dirs = append(dirs, l.Dir)
	}
	if r.Rootfs, err = snapshot.Mount(dirs, dir, &snapshot.IDMap{HostID: rg.HostID, Size: rg.Size}); err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	// rmi and prune keep these layers until the container's delete.
	if err := image.MarkInUse(dir, in.Image.Layers); err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	if in.Config == nil {
		return &r, nil
	}
	c := in.Config.Config
	if len(r.Args) == 0 {
		r.Args = append(slices.Clone(c.Entrypoint), c.Cmd...)
		if len(r.Args) == 0 {
			return nil, fmt.Errorf("image %s has no Entrypoint or Cmd: give a command after --", r.Image)
		}
	}
	r.Env = append(slices.Clone(c.Env), r.Env...)
	if r.Workdir == "" {
		r.Workdir = c.WorkingDir
	}
	if r.User == "" {
		r.User = c.User
	}
	return &r, nil
}

// withoutRootfsIdmap drops the idmapped rootfs the user namespace asks for:
// the snapshot's layers are idmapped already, and overlayfs cannot be.
func withoutRootfsIdmap(s *specs.Spec) {
	cur := s.Annotations[oci.AnnotationRootfsOptions]
	if cur == "" {
		return
	}
	opts := slices.DeleteFunc(strings.Split(cur, ","), func(o string) bool { return o == "idmap" })
	if len(opts) == 0 {
		delete(s.Annotations, oci.AnnotationRootfsOptions)
		return
	}
	s.Annotations[oci.AnnotationRootfsOptions] = strings.Join(opts, ",")
}
