package userface

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/image"
	"github.com/bulwark-sec/bulwark/pkg/image/snapshot"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/rootless"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// rootlessUserNamespace gives a rootless run's container its user
// namespace: root is the caller, ids above are the caller's subordinate
// ranges (pkg/rootless.IDMaps).
func rootlessUserNamespace(s *specs.Spec) error {
	uids, gids, err := rootless.IDMaps()
	if err != nil {
		return fmt.Errorf("rootless user namespace: %w", err)
	}
	return policy.WithIDMappings(uids, gids)(s)
}

// withoutLimits drops the cgroup limits of a rootless run's spec where
// no cgroup can be had, and says so in one line on w: the run goes on
// with everything else of the default (the runtime refuses a bundle with
// limits it cannot enforce; a person's run asked for none of these by
// hand unless a flag set them, and the line names them).
func withoutLimits(s *specs.Spec, w io.Writer) {
	_, why := rootless.Cgroups()
	if why == nil || s.Linux == nil || s.Linux.Resources == nil {
		return
	}
	r := s.Linux.Resources
	var dropped []string
	if r.Pids != nil && r.Pids.Limit != nil {
		dropped = append(dropped, fmt.Sprintf("pids %d", *r.Pids.Limit))
	}
	if r.Memory != nil && r.Memory.Limit != nil {
		dropped = append(dropped, fmt.Sprintf("memory %d MiB", *r.Memory.Limit>>20))
	}
	if r.CPU != nil {
		dropped = append(dropped, "cpu")
	}
	if r.BlockIO != nil {
		dropped = append(dropped, "blkio")
	}
	s.Linux.Resources = &specs.LinuxResources{Devices: r.Devices}
	if len(dropped) > 0 {
		fmt.Fprintf(w, "bulwark: rootless: cgroup limits not enforced (%s): %v; everything else of the default applies\n", strings.Join(dropped, ", "), why)
	}
}

// rootlessImage is image() without root: the snapshot's upper and work
// directories are made here, the overlay itself is mounted by the init
// in the container's user namespace (snapshot.Unprivileged), so nothing
// is mounted on the host. The layers were unpacked in a user namespace
// with the very mapping the container gets (pkg/rootless/mapped), so the
// image's owners are exact inside; image.CheckOwners refuses a store
// unpacked under other ranges. The image's /etc/passwd and /etc/group are
// copied out of the layers for --user names. Each VOLUME is a fresh
// directory under the snapshot filled with the image's content at that
// path, owners kept (mapped.Volumes), bound writable and removed with the
// container, as Podman's anonymous volumes.
func (h *host) rootlessImage(o *Options, id string, in image.Inspection) (*Options, error) {
	r := *o
	st, err := image.Open(r.DataRoot)
	if err != nil {
		return nil, err
	}
	if err := image.CheckOwners(st); err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	parent := image.SnapshotsDir(r.DataRoot)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("image %s: snapshot: %w", r.Image, err)
	}
	sum := sha256.Sum256([]byte(h.stateDir))
	dir := filepath.Join(parent, id+"-"+hex.EncodeToString(sum[:4]))
	// Its upper dir and volumes hold files of the container's users,
	// subordinate ids the caller may not remove: a mapped dir.
	h.own(container.Owned{Kind: container.OwnedMappedDir, Path: dir},
		container.Owned{Kind: container.OwnedSharedDir, Path: parent})
	var dirs []string
	for _, l := range in.Layers {
		dirs = append(dirs, l.Dir)
	}
	mountPoint, overlay, err := snapshot.Unprivileged(dirs, dir)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	r.Rootfs = mountPoint
	r.lookupRoot = filepath.Join(dir, "etc-lookup")
	if err := snapshot.MergedFiles(dirs, r.lookupRoot, "etc/passwd", "etc/group"); err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	h.etcRoot = r.lookupRoot
	c, err := useImage(&r, dir, in)
	if err != nil {
		return nil, err
	}
	r.annotations[oci.AnnotationRootfsOverlay] = overlay
	driver := r.StorageDriver
	if driver == "" {
		driver = rootfs.DriverAuto
	}
	r.annotations[oci.AnnotationStorageDriver] = driver
	if driver != rootfs.DriverOverlay {
		h.fuse = &fuseOverlayRun{options: overlay}
	}
	if r.ImageVolumes == "tmpfs" || r.ImageVolumes == "ignore" {
		return &r, imageVolumes(&r, c, userns.Range{}, "")
	}
	vols, err := imageVolumePaths(&r, c)
	if err != nil || len(vols) == 0 {
		return &r, err
	}
	volDir := filepath.Join(dir, "volumes")
	if err := os.Mkdir(volDir, 0o700); err != nil {
		return nil, fmt.Errorf("image %s: volumes: %w", r.Image, err)
	}
	paths := make([]string, len(vols))
	for i, v := range vols {
		paths[i] = v.dst
	}
	inside, err := mapped.Volumes(dirs, paths, volDir)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", r.Image, err)
	}
	for i, v := range vols {
		src := filepath.Join(volDir, strconv.Itoa(i))
		r.imageBinds = append(r.imageBinds, volumeFlag{flag: v.flag, volume: volume{src: src, dst: inside[i], noIdmap: true}})
	}
	return &r, nil
}
