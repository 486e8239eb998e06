package vmcontainer

// A VM container with a user namespace (the person face's default, the
// hardening floor's for an engine's config).
//
// QEMU then runs as the container's root, an unprivileged host uid, and
// the init reaches its bind sources by path with that uid's rights: the
// state directory (root's, 0700), the kernel cache (0600 files) and the
// rootfs an engine keeps below root-only directories are out of its reach.
// So the runtime, still host root, prepares them in a directory of their
// own, which only that root's group may search, under a root-owned parent
// anyone may traverse but nobody list (floorns.IdmapRoot): the boot files
// and this binary as idmapped binds (a host-root file appears as the container root's), the config and the run
// directory owned by the container's root, and the payload's rootfs bound
// with the ownership the container sees (idmapped when the config asks for
// it, over idmapped layers for an overlay).
//
// 9p's security_model=passthrough is what keeps ownership right through
// all this: QEMU acts on the shared files with its own ids, which the user
// namespace (and an idmapped rootfs) translate as for any process of the
// container, so a file the guest's root writes is owned on the disk as one
// the container's root writes in a namespace container. mapped-xattr would
// keep the guest's owners in xattrs and leave every file owned by QEMU's
// uid on the disk, and none would not even record them.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/floorns"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
)

// UsernsDir is where a VM container with a user namespace keeps what its
// root must reach: derived from its state directory.
func UsernsDir(stateDir string) string {
	h := sha256.Sum256([]byte("vm\x00" + stateDir))
	return filepath.Join(floorns.IdmapRoot, "vm-"+hex.EncodeToString(h[:16]))
}

// hostID is the host id container id 0 maps to.
func hostID(ms []specs.LinuxIDMapping) (uint32, bool) {
	for _, m := range ms {
		if m.ContainerID == 0 && m.Size > 0 {
			return m.HostID, true
		}
	}
	return 0, false
}

// reachable prepares l's sources where the container's root reaches them
// and returns the new layout and what was made, in the order delete
// removes it (each mount before its mount point).
func reachable(inner *specs.Spec, l layout, stateDir string, cfg []byte, kvm bool, warnf func(string, ...any)) (_ layout, owns []container.Owned, err error) {
	uid, _ := hostID(inner.Linux.UIDMappings) // checked by Wrap
	gid, _ := hostID(inner.Linux.GIDMappings)
	if err := os.MkdirAll(floorns.IdmapRoot, 0o711); err != nil {
		return l, nil, err
	}
	base := UsernsDir(stateDir)
	// The state directory was made by this create (the id's claim), so a
	// directory for it here is an earlier create's of the same id, killed
	// before its state recorded what it made.
	sweepStale(base)
	if err := os.Mkdir(base, 0o700); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	// Searchable by the container root's group alone: base holds the
	// payload's rootfs and the exec socket's directory, and its name
	// comes from the state directory, which any local user can derive
	// from the id ps shows.
	if err := os.Chown(base, 0, int(gid)); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	if err := os.Chmod(base, 0o710); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	// Mounts first, then files, then the directory: appended at the end
	// so that whatever failed midway is still released in that order.
	var mounts, files []container.Owned
	defer func() {
		owns = append(append(mounts, files...), container.Owned{Kind: container.OwnedDir, Path: filepath.Join(base, "root")},
			container.Owned{Kind: container.OwnedDir, Path: filepath.Join(base, "run")}, container.Owned{Kind: container.OwnedSharedDir, Path: base})
	}()
	nsfd, err := rootfs.UsernsFd(inner.Linux.UIDMappings, inner.Linux.GIDMappings)
	if err != nil {
		return l, nil, err
	}
	defer unix.Close(nsfd)

	// The binary, kernel and initramfs: idmapped, so QEMU (the
	// container's root) owns what host root owns; copied where the
	// filesystem cannot be idmapped.
	for _, f := range []struct {
		src *string
		n   string
	}{{&l.binary, "bulwark"}, {&l.kernel, "kernel"}, {&l.initrd, "initrd"}} {
		if *f.src == "" {
			continue // no initramfs: the agent boots from its 9p root
		}
		dst := filepath.Join(base, f.n)
		fd, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return l, nil, fmt.Errorf("vm container: %w", err)
		}
		fd.Close()
		files = append(files, container.Owned{Kind: container.OwnedSharedDir, Path: dst})
		mounts = append(mounts, container.Owned{Kind: container.OwnedMount, Path: dst})
		if err := rootfs.IdmapOntoVia(*f.src, dst, nsfd); err != nil {
			if !errors.Is(err, rootfs.ErrNoIdmap) {
				return l, nil, fmt.Errorf("vm container: %w", err)
			}
			if err := copyOwned(*f.src, dst, int(uid), int(gid)); err != nil {
				return l, nil, fmt.Errorf("vm container: %w", err)
			}
		}
		*f.src = dst
	}

	l.config = filepath.Join(base, "config.json")
	files = append(files, container.Owned{Kind: container.OwnedSharedDir, Path: l.config})
	if err := writeOwned(l.config, cfg, int(uid), int(gid)); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}

	// The run directory (exec socket, console log) is the container
	// root's; the state directory's run entry names it, for exec.
	l.run = filepath.Join(base, "run")
	if err := os.Mkdir(l.run, 0o700); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	if err := os.Lchown(l.run, int(uid), int(gid)); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	if err := os.Symlink(l.run, filepath.Join(stateDir, Dir, "run")); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	l.root = filepath.Join(base, "root")

	if kvm {
		// The host's /dev/kvm is root's and the kvm group's, neither of
		// which the container's root is: a node of its own, which only
		// the devices cgroup's rule lets it open.
		var st unix.Stat_t
		if err := unix.Stat("/dev/kvm", &st); err != nil {
			return l, nil, fmt.Errorf("vm container: /dev/kvm: %w", err)
		}
		l.kvm = filepath.Join(base, "kvm")
		files = append(files, container.Owned{Kind: container.OwnedSharedDir, Path: l.kvm})
		if err := unix.Mknod(l.kvm, unix.S_IFCHR|0o600, int(st.Rdev)); err != nil {
			return l, nil, fmt.Errorf("vm container: a /dev/kvm node for the container's root: %w", err)
		}
		if err := os.Lchown(l.kvm, int(uid), int(gid)); err != nil {
			return l, nil, fmt.Errorf("vm container: %w", err)
		}
	}

	// The rootfs, as the container's root sees it.
	dst := filepath.Join(base, "rootfs")
	if err := os.Mkdir(dst, 0o700); err != nil {
		return l, nil, fmt.Errorf("vm container: %w", err)
	}
	files = append(files, container.Owned{Kind: container.OwnedSharedDir, Path: dst})
	mounts = append([]container.Owned{{Kind: container.OwnedMount, Path: dst}}, mounts...)
	if err := bindRootfs(inner, l.rootfs, dst, nsfd, warnf); err != nil {
		return l, nil, err
	}
	l.rootfs = dst
	return l, nil, nil
}

// bindRootfs binds the payload's rootfs at dst: idmapped through the
// container's maps when the config asks for it (oci.AnnotationRootfsOptions),
// as the namespace runtime would attach it; as it is otherwise (a rootfs
// an engine chowned to the container's range).
func bindRootfs(inner *specs.Spec, src, dst string, nsfd int, warnf func(string, ...any)) error {
	idmap, _, _, err := rootfs.RootTreeOptions(inner)
	if err != nil {
		return err
	}
	if idmap && rootfs.IsOverlayMount(src) {
		// An overlay cannot be idmapped; one over idmapped layers can.
		tree, err := rootfs.RelayerOverlay(src, inner.Linux.UIDMappings, inner.Linux.GIDMappings, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
		if err != nil {
			return fmt.Errorf("vm container: rootfs %s: %w", src, err)
		}
		defer tree.Close()
		if err := unix.MoveMount(int(tree.Fd()), "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return fmt.Errorf("vm container: attaching the rootfs overlay at %s: %w", dst, err)
		}
		return nil
	}
	if idmap {
		err := rootfs.IdmapOntoVia(src, dst, nsfd)
		if err == nil || !errors.Is(err, rootfs.ErrNoIdmap) {
			return err
		}
		if warnf != nil {
			warnf("vm container: rootfs %s cannot be idmapped (%v): files owned by host root appear as nobody in the guest", src, err)
		}
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("vm container: binding the rootfs %s where the container's root reaches it: %w", src, err)
	}
	return nil
}

func writeOwned(path string, b []byte, uid, gid int) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chown(uid, gid); err != nil {
		return err
	}
	_, err = f.Write(b)
	return err
}

// copyOwned replaces the empty mount point dst with a copy of src owned by
// uid and gid.
func copyOwned(src, dst string, uid, gid int) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Chown(uid, gid); err != nil {
		return err
	}
	if err := out.Chmod(fi.Mode().Perm() & 0o500); err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return err
}

// sweepStale removes what a killed create left in base, mounts first;
// nothing is removed recursively across a mount that stays.
func sweepStale(base string) {
	if _, err := os.Lstat(base); err != nil {
		return
	}
	for _, n := range []string{"rootfs", "bulwark", "kernel", "initrd"} {
		_ = unix.Unmount(filepath.Join(base, n), unix.MNT_DETACH)
	}
	for _, n := range []string{"rootfs", "bulwark", "kernel", "initrd", "config.json", "kvm"} {
		_ = os.Remove(filepath.Join(base, n))
	}
	for _, n := range []string{"root", "run"} {
		_ = os.RemoveAll(filepath.Join(base, n))
	}
	_ = os.Remove(base)
}

func release(owns []container.Owned, stateDir string) {
	for _, o := range owns {
		_ = o.Release(stateDir)
	}
}
