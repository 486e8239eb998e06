// Package rootfs builds the container's filesystem view from inside the
// container's init, which already runs in a fresh mount namespace (and
// possibly a fresh user namespace).
//
// The threat it defends against is a hostile root filesystem or image: the
// rootfs content is controlled by whoever built the image, so any symlink in
// it ("/etc -> /tmp/hostdir", "/dev -> ../../..") could redirect a mount, a
// mknod or a file creation onto the host. Every path taken from the spec is
// therefore resolved inside the rootfs with github.com/cyphar/filepath-securejoin
// (openat2 RESOLVE_IN_ROOT where available), the result is held as an O_PATH
// file descriptor and every mount targets /proc/self/fd/N of that descriptor,
// so nothing can be swapped between the check and the use. The resolved
// path is checked once more to lie inside the rootfs before mounting.
//
// Secondary threats handled here: leaking mounts or mount events to the
// host (the whole tree is made rslave before anything else, the old root is
// detached after pivot_root), mounting over /proc (only procfs, and a short
// list of lxcfs-style files, may be mounted there), a container process
// reaching the host's procfs/sysfs after --no-pivot (full host proc/sys
// mounts are detached before the chroot), and kernel interfaces that must
// not be readable or writable from the container (maskedPaths,
// readonlyPaths, a read-only root), a /dev a dropped binary runs from
// (Finish remounts the /dev tmpfs read-only, nosuid and noexec once all
// below it is in place) and one container taking every pty on the host
// (each devpts instance gets max=DevptsMax), and one payload process
// writing another's memory through /proc/PID/mem where Landlock cannot
// refuse it (ReadOnlyProc makes procfs a read-only mount). A rootless
// image snapshot served by fuse-overlayfs (fuseoverlay.go) is a FUSE
// connection of the container's own user namespace, mounted by the init
// in its mount namespace: allow_other admits that namespace's processes
// only, and the daemon ends with the mount, so nothing of it reaches the
// host's mount table or outlives the container.
//
// The order of operations follows runc: Prepare (propagation, rootfs bind,
// spec mounts, /dev), then Pivot, then Finish (read-only and masked paths,
// delayed read-only remounts, read-only root).
package rootfs
