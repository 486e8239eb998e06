package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Storage drivers of an image snapshot the init mounts itself
// (oci.AnnotationStorageDriver).
const (
	DriverAuto          = "auto"
	DriverOverlay       = "overlay"
	DriverFuseOverlayfs = "fuse-overlayfs"
)

// ValidDriver tells whether name is a storage driver ("" is auto).
func ValidDriver(name string) bool {
	switch name {
	case "", DriverAuto, DriverOverlay, DriverFuseOverlayfs:
		return true
	}
	return false
}

// rootOverlay is a rootless image snapshot the init mounts at its rootfs:
// overlayfs's lowerdir, upperdir and workdir options, the driver, and the
// runtime's side of fuse-overlayfs (Options.FuseOverlay).
type rootOverlay struct {
	options string
	driver  string
	serve   func(dev *os.File, reason string) error
}

// kernelRefused tells the errors of the kernel's overlayfs mount that mean
// "not here", which fuse-overlayfs then works around:
//   - EPERM: overlayfs is not mountable in a user namespace (kernels before
//     5.11: it lacked FS_USERNS_MOUNT);
//   - EINVAL: overlayfs refuses the options or the upper directory's
//     filesystem (userxattr is unknown before 5.11; an upper on overlayfs,
//     FUSE, NFS or another filesystem whose dentries revalidate, or on a
//     read-only one, "not supported as upperdir");
//   - ENODEV: no overlay filesystem in this kernel;
//   - EOPNOTSUPP: the upper's filesystem lacks a feature overlayfs needs.
//
// Not ENOENT, EACCES, ENOTDIR, ELOOP or EBUSY: a missing or unreadable
// layer, or a work directory in use, which fuse-overlayfs would not fix
// and whose own error says what is wrong.
func kernelRefused(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EOPNOTSUPP)
}

// mount mounts the snapshot at rootfs: the kernel's overlayfs, or where
// it refuses (or the driver says so), a FUSE connection of this user
// namespace served by the runtime's fuse-overlayfs.
func (ov *rootOverlay) mount(rootfs string) error {
	reason := "--storage-driver fuse-overlayfs"
	if ov.driver != DriverFuseOverlayfs {
		// userxattr: the layers were unpacked without privilege, their
		// opaque marks are user.overlay.*, the only ones an overlay
		// mounted in a user namespace may read.
		opts := ov.options + ",userxattr"
		err := unix.Mount("overlay", rootfs, "overlay", 0, opts)
		if err == nil {
			return nil
		}
		kerr := fmt.Errorf("mounting the image's overlay at rootfs %q (%s): %w", rootfs, opts, err)
		if !kernelRefused(err) {
			return kerr
		}
		if ov.driver == DriverOverlay {
			return fmt.Errorf("%w (--storage-driver overlay: the default, auto, serves it with fuse-overlayfs where the kernel refuses)", kerr)
		}
		if ov.serve == nil {
			return fmt.Errorf("%w; and no fuse-overlayfs to fall back to in this runtime", kerr)
		}
		reason = fmt.Sprintf("the kernel's overlayfs refused it (%v)", err)
	}
	return ov.mountFuse(rootfs, reason)
}

// mountFuse mounts a FUSE connection at rootfs and has the runtime serve
// it. The mount is made here, in the container's user namespace, so the
// connection is that namespace's: allow_other lets every id of it (and no
// process outside it) in, default_permissions has the kernel check modes
// and owners as for any filesystem, and nothing is mounted on the host.
// The daemon runs outside, in a user namespace of the same mapping, and
// ends when the connection does: when this mount namespace goes, with the
// container.
func (ov *rootOverlay) mountFuse(rootfs, reason string) error {
	dev, err := os.OpenFile("/dev/fuse", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s, and fuse-overlayfs needs /dev/fuse: %w (load the fuse module: modprobe fuse)", reason, err)
	}
	defer dev.Close()
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,subtype=fuse-overlayfs", dev.Fd())
	if err := unix.Mount("fuse-overlayfs", rootfs, "fuse", 0, data); err != nil {
		return fmt.Errorf("%s, and mounting FUSE at rootfs %q for fuse-overlayfs failed: %w", reason, rootfs, err)
	}
	if err := ov.serve(dev, reason); err != nil {
		return err
	}
	// Only the daemon may hold the connection now: if it ends, every
	// access fails (ENOTCONN) instead of waiting for an answer.
	dev.Close()
	var st unix.Statfs_t
	if err := unix.Statfs(rootfs, &st); err != nil {
		return fmt.Errorf("fuse-overlayfs did not serve rootfs %q: %w", rootfs, err)
	}
	return nil
}
