// Package snapshot gives one container its own writable view of an image:
// an overlayfs mount whose lowers are the store's unpacked layers and whose
// upper and work directories are the container's alone.
//
// The threats are a container that writes into the shared layers (every
// other container of the image would see it) and a container whose root
// owns the layers as the host's root. Each lower is a read-only clone of
// the layer (lowerdir+, Linux 6.8+), attached in a private directory only
// while the overlay is made; with a user namespace the clones are
// idmapped, so the image's root files are the container's root's and no
// chowned copy is made.
//
// What the kernel allows (6.18, ext4, checked by the tests): idmapped
// lowers work (overlayfs clones them, so they must be attached: a detached
// tree fails with "failed to clone lowerpath"); idmapping the overlay
// mount itself fails (EINVAL: overlayfs does not allow it); an idmapped upper makes overlayfs fall back to
// read-only (it makes its work dir as the mounter, host root, whom the
// mapping lacks: EOVERFLOW). So the upper and work directories are plain
// directories owned by the container's mapped root.
package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/rootfs"
)

// IDMap is the container's user namespace mapping, one range for uids and
// gids; nil runs the snapshot unmapped.
type IDMap struct {
	HostID, Size uint32
}

// Mount mounts layers (diffID directories, bottom first) with an upper and
// work dir under dir at dir/rootfs, which it returns. dir must not exist.
func Mount(layers []string, dir string, m *IDMap) (string, error) {
	if len(layers) == 0 {
		return "", errors.New("snapshot: an image without layers")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", dir, err)
	}
	upper, work, rootfs := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, rootfs} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return "", fmt.Errorf("snapshot %s: %w", d, err)
		}
	}
	// The merged root takes the upper dir's mode: the image's, not 0700.
	top, err := os.Stat(layers[len(layers)-1])
	if err != nil {
		return "", fmt.Errorf("snapshot: layer %s: %w", layers[len(layers)-1], err)
	}
	if err := os.Chmod(upper, top.Mode().Perm()); err != nil {
		return "", err
	}
	if m != nil {
		// The container's root reaches its snapshot; nobody else does.
		// Search for others (0711) would let any local user who knows
		// the name read and plant files in the running container's
		// rootfs and run its set-user-id files as the container root's
		// host uid (Docker's CVE-2021-41091): only the group of the
		// container's mapped root may pass.
		if err := os.Chown(dir, 0, int(m.HostID)); err != nil {
			return "", fmt.Errorf("snapshot %s: %w", dir, err)
		}
		if err := os.Chmod(dir, 0o710); err != nil {
			return "", err
		}
		for _, d := range []string{upper, rootfs} {
			if err := os.Chown(d, int(m.HostID), int(m.HostID)); err != nil {
				return "", fmt.Errorf("snapshot %s: %w", d, err)
			}
		}
	}
	var ns = -1
	if m != nil {
		if ns, err = usernsFd(*m); err != nil {
			return "", err
		}
		defer unix.Close(ns)
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("snapshot: fsopen overlay: %w", err)
	}
	defer unix.Close(fs)
	// overlayfs takes private clones of its lowers, and only of mounts
	// attached in our namespace: each is attached under dir/lower for the
	// time of the mount, then detached (the overlay keeps its clones).
	lowers := filepath.Join(dir, "lower")
	if err := os.Mkdir(lowers, 0o700); err != nil {
		return "", err
	}
	var attached []string
	defer func() {
		for _, a := range attached {
			_ = unix.Unmount(a, unix.MNT_DETACH)
		}
		_ = os.RemoveAll(lowers)
	}()
	// lowerdir+ stacks downwards: the top layer first.
	for i := len(layers) - 1; i >= 0; i-- {
		at := filepath.Join(lowers, fmt.Sprint(i))
		if err := os.Mkdir(at, 0o700); err != nil {
			return "", err
		}
		tree, err := lower(layers[i], ns)
		if err != nil {
			return "", err
		}
		err = unix.MoveMount(tree, "", unix.AT_FDCWD, at, unix.MOVE_MOUNT_F_EMPTY_PATH)
		unix.Close(tree)
		if err != nil {
			return "", fmt.Errorf("snapshot: attach layer %s: %w", layers[i], err)
		}
		attached = append(attached, at)
		if err := unix.FsconfigSetString(fs, "lowerdir+", at); err != nil {
			return "", fmt.Errorf("snapshot: layer %s as lowerdir+ (needs Linux 6.8+): %w", layers[i], err)
		}
	}
	for k, v := range map[string]string{"upperdir": upper, "workdir": work} {
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return "", fmt.Errorf("snapshot: %s %s: %w", k, v, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return "", fmt.Errorf("snapshot: overlay create: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return "", fmt.Errorf("snapshot: fsmount: %w", err)
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return "", fmt.Errorf("snapshot: mount at %s: %w", rootfs, err)
	}
	return rootfs, nil
}

// lower opens a detached clone of dir, idmapped through ns when ns >= 0,
// read-only.
func lower(dir string, ns int) (int, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("snapshot: open_tree %s: %w", dir, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if ns >= 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(ns)
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(tree)
		return -1, fmt.Errorf("snapshot: idmapped layer %s (the filesystem may not support idmapped mounts): %w", dir, err)
	}
	return tree, nil
}

// usernsFd holds a user namespace with m for the idmapped mounts.
func usernsFd(m IDMap) (int, error) {
	ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.HostID, Size: m.Size}}
	fd, err := rootfs.UsernsFd(ids, ids)
	if err != nil {
		return -1, fmt.Errorf("snapshot: user namespace for idmapped layers (%d+%d): %w", m.HostID, m.Size, err)
	}
	return fd, nil
}

// Unmount detaches the snapshot at rootfs; one not mounted is no error.
func Unmount(rootfs string) error {
	err := unix.Unmount(rootfs, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("snapshot: unmount %s: %w", rootfs, err)
}
