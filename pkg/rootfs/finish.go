package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Finish runs after Pivot, inside the new root: it applies a shared or
// unbindable root propagation (which before the pivot would have reached
// the host's root mount), linux.readonlyPaths, linux.maskedPaths, the
// read-only remount of tmpfs and /dev mounts that Prepare had to populate,
// and finally root.readonly. Paths are the container's own; missing
// readonly or masked paths are skipped, as the spec allows.
func Finish(s *specs.Spec) error {
	if s == nil {
		return errors.New("rootfs: nil spec")
	}
	prop, err := rootPropagation(s)
	if err != nil {
		return err
	}
	if prop&(unix.MS_SLAVE|unix.MS_PRIVATE) == 0 {
		if err := unix.Mount("", "/", "", uintptr(prop), ""); err != nil {
			return fmt.Errorf("applying linux.rootfsPropagation %q to /: %w", s.Linux.RootfsPropagation, err)
		}
	}
	if s.Linux != nil {
		for i, p := range s.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("linux.readonlyPaths[%d] %q: %w", i, p, err)
			}
		}
		if err := maskPaths(s.Linux.MaskedPaths); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		opts, err := parseMountOptions(m.Options)
		if err != nil {
			return fmt.Errorf("mounts[%d]: %w", i, err)
		}
		if opts.flags&unix.MS_RDONLY == 0 || opts.flags&unix.MS_BIND != 0 || m.Type == "bind" {
			continue
		}
		if m.Type == "tmpfs" && cleanDest(m.Destination) != "/dev" {
			if err := remountRO(cleanDest(m.Destination), opts.flags); err != nil {
				return fmt.Errorf("mounts[%d] read-only remount of %q: %w", i, m.Destination, err)
			}
		}
	}
	if err := sealDev(s); err != nil {
		return err
	}
	if s.Root != nil && s.Root.Readonly {
		// A remount sets exactly the per-mount flags it is given: the
		// rootfs keeps the nosuid, nodev, noexec and atime mode it has (a
		// caller's nosuid,nodev bind of it), as in runc.
		var st unix.Statfs_t
		if err := unix.Statfs("/", &st); err != nil {
			return fmt.Errorf("root.readonly: statfs /: %w", err)
		}
		if err := remountRO("/", statfsToMountFlags(st)&mntLockFlags&^unix.MS_RDONLY); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

// sealDev makes the container's /dev mount read-only, nosuid and noexec
// once everything below it exists: device nodes, symlinks and the mounts
// an engine puts there (shm, mqueue, pts, the console, a termination-log
// bind). Writable, /dev is where a dropped binary runs despite a read-only
// rootfs and a noexec /tmp. The remount is not recursive, so /dev/shm and
// the rest keep their own flags. A /dev that is part of the rootfs (no
// mount at /dev) follows root.readonly instead.
func sealDev(s *specs.Spec) error {
	for i, m := range s.Mounts {
		if cleanDest(m.Destination) != "/dev" || m.Type != "tmpfs" {
			continue
		}
		opts, err := parseMountOptions(m.Options)
		if err != nil {
			return fmt.Errorf("mounts[%d]: %w", i, err)
		}
		flags := opts.flags&^unix.MS_BIND | unix.MS_NOEXEC | unix.MS_NOSUID
		if err := remountRO("/dev", flags); err != nil {
			return fmt.Errorf("mounts[%d] read-only, noexec remount of /dev: %w", i, err)
		}
	}
	return nil
}

// remountRO makes the mount at p read-only. MS_BIND|MS_REMOUNT only
// changes per-mount flags, which a user namespace may do as long as no
// locked flag is dropped; if it still fails, the current flags are kept.
func remountRO(p string, flags int) error {
	f, err := openPath(p)
	if err != nil {
		return err
	}
	defer f.Close()
	flags |= unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY
	flags &^= unix.MS_REC
	err = mountFd("", f, "", flags, "")
	if err == nil {
		return nil
	}
	var st unix.Statfs_t
	if serr := unix.Fstatfs(int(f.Fd()), &st); serr != nil {
		return fmt.Errorf("%w (and statfs failed: %v)", err, serr)
	}
	if err2 := mountFd("", f, "", flags|statfsToMountFlags(st)&mntLockFlags, ""); err2 != nil {
		return fmt.Errorf("%w; retry keeping locked flags: %v", err, err2)
	}
	return nil
}

// readonlyPath binds p onto itself and makes that bind read-only, keeping
// nosuid/nodev/noexec of what it covers.
func readonlyPath(p string) error {
	f, err := openPath(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := mountFd(procFd(f), f, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := openPath(p)
	if err != nil {
		return fmt.Errorf("re-opening after bind: %w", err)
	}
	defer top.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(top.Fd()), &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	keep := statfsToMountFlags(st) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if err := mountFd("", top, "", keep|unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return remountRO(p, keep)
	}
	return nil
}

// maskPaths hides paths: every directory shows one empty read-only tmpfs,
// any other file is covered by /dev/null. /dev/null is checked to be the real
// 1:3 character device first, since the image could have placed a
// different node (or a regular file full of data) there.
func maskPaths(paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	null, err := openPath("/dev/null")
	if err != nil {
		return fmt.Errorf("linux.maskedPaths: need /dev/null to mask files: %w", err)
	}
	defer null.Close()
	var nst unix.Stat_t
	if err := unix.Fstat(int(null.Fd()), &nst); err != nil {
		return fmt.Errorf("linux.maskedPaths: stat /dev/null: %w", err)
	}
	if nst.Mode&unix.S_IFMT != unix.S_IFCHR || nst.Rdev != unix.Mkdev(1, 3) {
		return errors.New("linux.maskedPaths: the container's /dev/null is not the 1:3 character device; refusing to use it as a mask")
	}
	var empty *os.File
	defer func() {
		if empty != nil {
			empty.Close()
		}
	}()
	done := make(map[string]bool, len(paths))
	for i, p := range paths {
		// A path listed twice is masked once, as in runc: a second mount
		// would only stack on the first.
		if done[filepath.Clean(p)] {
			continue
		}
		done[filepath.Clean(p)] = true
		f, err := openPath(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("linux.maskedPaths[%d] %q: %w", i, p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			f.Close()
			return fmt.Errorf("linux.maskedPaths[%d] %q: %w", i, p, err)
		}
		switch {
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			err = mountFd(procFd(null), f, "", unix.MS_BIND, "")
		case empty != nil:
			// A bind takes the per-mount flags of its source: read-only,
			// nosuid, nodev, noexec.
			err = mountFd(procFd(empty), f, "", unix.MS_BIND, "")
		default:
			empty, err = emptyTmpfs(p, f)
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("linux.maskedPaths[%d] %q: %w", i, p, err)
		}
	}
	return nil
}

// emptyTmpfs mounts the one empty read-only tmpfs every masked directory
// shows (runc 1.5 shares one the same way: a mount per directory is a
// kernel object per directory, and the default config masks several) on
// dir, the directory f holds, and returns a handle on its root to bind the
// others from.
func emptyTmpfs(dir string, f *os.File) (*os.File, error) {
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	err := mountFd("tmpfs", f, "tmpfs", flags, "nr_blocks=1,nr_inodes=1")
	if err != nil {
		// Some distribution kernels reject nr_inodes<2.
		err = mountFd("tmpfs", f, "tmpfs", flags, "nr_blocks=1,nr_inodes=2")
	}
	if err != nil {
		return nil, err
	}
	// f is the directory under the new mount; the path leads onto it.
	// Nothing else runs in the container yet to move it, and the handle
	// is checked to be such a tmpfs before anything is bound from it.
	root, err := openPath(dir)
	if err != nil {
		return nil, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(root.Fd()), &sfs); err != nil {
		root.Close()
		return nil, err
	}
	if sfs.Type != unix.TMPFS_MAGIC || sfs.Blocks > 1 || sfs.Flags&unix.ST_RDONLY == 0 {
		root.Close()
		return nil, errors.New("the empty tmpfs just mounted is not what the path leads to")
	}
	return root, nil
}

// ReadOnlyProc makes every procfs mount of s read-only, keeping its nosuid,
// nodev and noexec. It runs after Finish, inside the new root, and only in
// the container's own mount namespace.
//
// Opening /proc/PID/mem for writing takes only the same uid and a dumpable
// target (ptrace's attach-mode check, which seccomp's ptrace rule does not
// reach), and the kernel asks the mount for write access before it runs
// that check: on a read-only mount every such open fails with EROFS, a
// sibling's mem and the process's own alike. It is the caller's choice
// (pkg/containerinit): Landlock refuses these opens with EACCES where the
// rootfs is read-only, and cannot where it is writable, since write access
// beneath / includes /proc. The remount is not recursive, so readonlyPaths
// and maskedPaths beneath /proc keep what Finish gave them; opening
// /proc/self/fd/N for writing still works (the magic link leads to the
// file's own mount).
func ReadOnlyProc(s *specs.Spec) error {
	if s == nil {
		return errors.New("rootfs: nil spec")
	}
	for i, m := range s.Mounts {
		if m.Type != "proc" {
			continue
		}
		p := cleanDest(m.Destination)
		f, err := openPath(p)
		if err != nil {
			return fmt.Errorf("mounts[%d] read-only remount of procfs at %q: %w", i, p, err)
		}
		var st unix.Statfs_t
		err = unix.Fstatfs(int(f.Fd()), &st)
		f.Close()
		if err != nil {
			return fmt.Errorf("mounts[%d] read-only remount of procfs at %q: statfs: %w", i, p, err)
		}
		if st.Type != unix.PROC_SUPER_MAGIC {
			return fmt.Errorf("mounts[%d] read-only remount of procfs at %q: the mount there is not procfs (f_type 0x%x)", i, p, st.Type)
		}
		keep := statfsToMountFlags(st) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
		if err := remountRO(p, keep); err != nil {
			return fmt.Errorf("mounts[%d] read-only remount of procfs at %q: %w", i, p, err)
		}
	}
	return nil
}
