package container

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// A container configured without a mount namespace shares the host's: the
// mounts its config asks for are made under its rootfs in the host's mount
// table (runc and crun do the same; the runtime-tools linux_ns_itype test
// requires it). Bulwark records which ones it made and removes exactly those
// when the container is deleted or its create fails, so nothing of it stays
// mounted on the host.

// checkHostMountNS refuses what cannot be honoured without a mount namespace
// of the container's own: masking, read-only paths and a read-only root are
// remounts that would change the host's view, and a root propagation would
// change the propagation of the host's own mounts.
func checkHostMountNS(s *specs.Spec) error {
	field := ""
	switch {
	case s.Linux == nil:
	case len(s.Linux.MaskedPaths) > 0:
		field = "linux.maskedPaths"
	case len(s.Linux.ReadonlyPaths) > 0:
		field = "linux.readonlyPaths"
	case s.Linux.RootfsPropagation != "":
		field = "linux.rootfsPropagation"
	}
	if field == "" && s.Root != nil && s.Root.Readonly {
		field = "root.readonly"
	}
	if field != "" {
		return &oci.FieldError{File: oci.ConfigFile, Field: field, Msg: "needs a mount namespace of the container's own (add {\"type\": \"mount\"} to linux.namespaces); without one it would change the host's mounts", Err: oci.ErrInvalidConfig}
	}
	return nil
}

// mountsBelow returns the mount IDs of the host mounts strictly below dir.
func mountsBelow(dir string) (map[int]string, error) {
	// The mount table shows resolved paths, as the init mounts under them.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("reading the host's mount table: %w", err)
	}
	ids := make(map[int]string, len(ms))
	for _, m := range ms {
		if m.Mountpoint != dir && strings.HasPrefix(m.Mountpoint, dir+"/") {
			ids[m.ID] = m.Mountpoint
		}
	}
	return ids, nil
}

// newMountsBelow lists the mounts below dir that are not in before, by ID.
func newMountsBelow(dir string, before map[int]string) ([]int, error) {
	now, err := mountsBelow(dir)
	if err != nil {
		return nil, err
	}
	var ids []int
	for id := range now {
		if _, ok := before[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids, nil
}

// unmountHostMounts detaches the recorded mounts below rootfs, deepest
// first. A mount is only touched while the host's mount table still lists it
// under the same ID below rootfs: a container that renamed or replaced a
// directory on the way cannot steer the runtime onto a host mount.
func unmountHostMounts(rootfs string, ids []int) error {
	if len(ids) == 0 {
		return nil
	}
	now, err := mountsBelow(rootfs)
	if err != nil {
		return err
	}
	var paths []string
	for _, id := range ids {
		if p, ok := now[id]; ok {
			paths = append(paths, p)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i] > paths[j] })
	var errs []error
	for _, p := range paths {
		if err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
