package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Pivot makes rootfs (prepared by Prepare) the root of the mount namespace
// and drops every reference to the host's tree.
//
// pivot_root(".", ".") stacks the old root on top of the new one at "/";
// unmounting it lazily leaves only the container's tree, without needing a
// put_old directory inside the image. With noPivot (for a rootfs on
// ramfs/initramfs, where pivot_root is impossible) the rootfs is moved onto
// "/" and chrooted into; the host tree then still exists in the namespace,
// so full host proc and sysfs mounts are detached first, since their mere
// presence lets the kernel allow a fresh procfs mount from inside.
func Pivot(rootfs string, noPivot bool) error {
	rootfs, err := cleanRootfs(rootfs)
	if err != nil {
		return err
	}
	if noPivot {
		return moveRoot(rootfs)
	}
	return pivotRoot(rootfs)
}

// Chroot enters rootfs for a container that shares the host's mount
// namespace, where pivot_root would replace the host's own root.
func Chroot(rootfs string) error {
	rootfs, err := cleanRootfs(rootfs)
	if err != nil {
		return err
	}
	if err := unix.Chroot(rootfs); err != nil {
		return fmt.Errorf("chroot into %q: %w", rootfs, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / after chroot: %w", err)
	}
	return nil
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening rootfs %q: %w", rootfs, err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to rootfs %q: %w", rootfs, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %q (is it a mount point with a non-shared parent?): %w", rootfs, err)
	}
	// The kernel does not promise what "." is after pivot_root; go to the
	// old root explicitly before detaching it.
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to the old root: %w", err)
	}
	// rslave, not rprivate: the unmount must not propagate to the host, but
	// host mount events may still reach mounts we are about to drop.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making the old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / in the new root: %w", err)
	}
	return nil
}

func moveRoot(rootfs string) error {
	hostPseudo, err := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) {
		skip := i.Root != "/" || (i.FSType != "proc" && i.FSType != "sysfs") ||
			i.Mountpoint == rootfs || strings.HasPrefix(i.Mountpoint, rootfs+"/")
		return skip, false
	})
	if err != nil {
		return fmt.Errorf("listing host proc/sysfs mounts: %w", err)
	}
	for _, i := range hostPseudo {
		p := i.Mountpoint
		if err := unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // a parent was already detached
			}
			return fmt.Errorf("making host %s mount %q rslave: %w", i.FSType, p, err)
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("detaching host %s mount %q: %w", i.FSType, p, err)
			}
			// Locked in a user namespace: cover it instead.
			if err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0"); err != nil {
				return fmt.Errorf("covering host %s mount %q: %w", i.FSType, p, err)
			}
		}
	}
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs %q: %w", rootfs, err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving rootfs %q onto /: %w", rootfs, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into %q: %w", rootfs, err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir / after chroot: %w", err)
	}
	return nil
}

// openPath gives Finish an O_PATH handle to an absolute
// path inside the (already pivoted) root.
func openPath(p string) (*os.File, error) {
	return os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC, 0)
}
