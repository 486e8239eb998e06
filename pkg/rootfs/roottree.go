package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// The annotation oci.AnnotationRootfsOptions asks for the rootfs to be
// attached with mount attributes a plain self-bind cannot give it. The value
// is a comma list:
//
//	idmap   the rootfs is an idmapped mount through the container's
//	        linux.uidMappings/gidMappings, so files owned by host root
//	        appear owned by the container's root;
//	nosuid  set-user-id bits on the rootfs are ignored;
//	nodev   device nodes shipped in the rootfs cannot be opened.
//
// An idmapped mount of a host filesystem can only be made by a process
// privileged in the host's user namespace, which the container's init no
// longer is; so the runtime makes the mount (OpenRootTree) and hands the
// detached tree to the init, which attaches it instead of self-binding the
// rootfs (Options.RootTree).

// RootTreeOptions parses the annotation; ok is false when it is absent.
func RootTreeOptions(s *specs.Spec) (idmap bool, attrs uint64, ok bool, err error) {
	v, ok := s.Annotations[oci.AnnotationRootfsOptions]
	if !ok {
		return false, 0, false, nil
	}
	for _, o := range strings.Split(v, ",") {
		switch strings.TrimSpace(o) {
		case "idmap":
			idmap = true
		case "nosuid":
			attrs |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			attrs |= unix.MOUNT_ATTR_NODEV
		case "":
		default:
			return false, 0, true, fmt.Errorf("annotations[%q]: unknown option %q (want idmap, nosuid, nodev)", oci.AnnotationRootfsOptions, o)
		}
	}
	if idmap && (s.Linux == nil || len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return false, 0, true, fmt.Errorf("annotations[%q]: idmap needs linux.uidMappings and linux.gidMappings", oci.AnnotationRootfsOptions)
	}
	return idmap, attrs, true, nil
}

// OpenRootTree makes the detached mount the init attaches as its rootfs,
// as the annotation asks; nil when there is no annotation. It runs in the
// runtime, as host root, once the init (pid) has made its mount namespace
// and before it mounts anything. idmap reports that the annotation asks
// for an idmapped mount, which IdmapRootTree then applies through a user
// namespace with the container's maps.
//
// The rootfs is cloned in the init's mount namespace, not the runtime's:
// the kernel locked the flags of the host's mounts (read-only, nosuid,
// nodev, noexec) in the copy a mount namespace owned by the container's
// user namespace got, and a clone keeps those locks. A clone of the host's
// own table has none, and container root with CAP_SYS_ADMIN in its user
// namespace could then make a rootfs the host mounted read-only writable.
func OpenRootTree(rootfs string, s *specs.Spec, pid int) (tree *os.File, idmap bool, err error) {
	idmap, attrs, ok, err := RootTreeOptions(s)
	if err != nil || !ok {
		return nil, false, err
	}
	rootfs, err = cleanRootfs(rootfs)
	if err != nil {
		return nil, false, err
	}
	if idmap && IsOverlayMount(rootfs) {
		// The kernel cannot idmap an overlayfs mount; it can mount one
		// over idmapped layers (overlay.go).
		tree, err := RelayerOverlay(rootfs, s.Linux.UIDMappings, s.Linux.GIDMappings, attrs)
		return tree, false, err
	}
	err = inMountNS(pid, func() error {
		fd, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return fmt.Errorf("open_tree(%q, OPEN_TREE_CLONE) in the container's mount namespace: %w", rootfs, err)
		}
		tree = os.NewFile(uintptr(fd), "rootfs-tree")
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if attrs != 0 {
		attr := &unix.MountAttr{Attr_set: attrs}
		if err := unix.MountSetattr(int(tree.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			tree.Close()
			return nil, false, fmt.Errorf("mount_setattr(%#x) on a clone of rootfs %q: %w", attrs, rootfs, err)
		}
	}
	return tree, idmap, nil
}

// IdmapRootTree idmaps the tree OpenRootTree made through the user
// namespace nsfd. The tree is detached, so this may happen after the init
// holds it and until the init attaches it. When the filesystem holding the
// rootfs cannot be idmapped, the tree stays as it is and warning says what
// that means for the container.
func IdmapRootTree(tree *os.File, rootfs string, nsfd int) (warning string, err error) {
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
	err = unix.MountSetattr(int(tree.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr)
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS):
		// EINVAL is how the kernel says "this filesystem (or one of the
		// submounts) has no idmapped-mount support".
		return fmt.Sprintf("rootfs %s on %s cannot be idmapped (%v): files owned by host root appear as nobody in the container; "+
			"use a writable rootfs only after chowning it to the container's host id range", rootfs, fsName(rootfs), err), nil
	}
	return "", fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP) on a clone of rootfs %q: %w", rootfs, err)
}

// NewUserNSFd is a user namespace with the container's maps for
// IdmapRootTree when the init does not create one to borrow (it joins an
// existing user namespace).
func NewUserNSFd(s *specs.Spec) (int, error) {
	return UsernsFd(s.Linux.UIDMappings, s.Linux.GIDMappings)
}

// attachRootTree puts the runtime's detached tree on rootfs, in place of
// prepareRoot's self-bind.
func attachRootTree(tree *os.File, rootfs string) error {
	if err := unix.MoveMount(int(tree.Fd()), "", unix.AT_FDCWD, rootfs, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching the prepared rootfs tree on %q: %w", rootfs, err)
	}
	return nil
}

func fsName(path string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return "an unknown filesystem"
	}
	switch st.Type {
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	}
	return fmt.Sprintf("filesystem type %#x", st.Type)
}
