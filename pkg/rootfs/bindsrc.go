package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Bind sources. A bind mount's source is a host path from the trusted
// config, but the walk to it may cross the container's rootfs (a source
// inside it, or a host symlink leading into it), where every symlink is the
// image's. So a source is walked component by component on the host until
// the walk enters the rootfs, and from there resolved inside the rootfs
// (openat2 RESOLVE_IN_ROOT), as a mount target is: an image cannot point a
// bind at the host's /etc.
//
// An init in a user namespace walks as container root, which may not
// traverse the host directories holding a source (containerd keeps a pod's
// /dev/shm under a 0700 directory). So, as runc does, the runtime opens
// those sources itself, as host root, in the init's mount namespace before
// the init mounts anything (OpenSources), and the init binds the handles.
// Opening them in the init's mount namespace, not the runtime's, keeps the
// flags the kernel locked on the mounts a user namespace inherits (read-only,
// nosuid, nodev): a clone made from the host's table would let container
// root remount a read-only volume writable. Sources inside the rootfs are
// left to the init, which resolves them at their turn: a source below an
// earlier mount of the config shows that mount's content, as in runc.

// Source is a bind mount's source as the init gets it.
type Source struct {
	// File is an O_PATH handle on the source, or with Tree a detached
	// (idmapped) mount of it; nil when InRoot is set.
	File *os.File
	Tree bool
	// InRoot is the source's path inside the rootfs, resolved by the init
	// at the mount's turn.
	InRoot string
}

// OpenedSource is one source OpenSources opened, for s.Mounts[Mount].
type OpenedSource struct {
	Mount int
	Source
}

// idmapped reports whether m asks for an id-mapped mount: "idmap",
// "ridmap", or (runtime-spec 1.1, runc ≥ 1.2) mappings without either.
func idmapped(m specs.Mount, opts mountOpts) bool {
	return opts.idmap || opts.ridmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
}

// IsIDMapped reports whether m is an id-mapped bind mount.
func IsIDMapped(m specs.Mount) bool {
	opts, err := parseMountOptions(m.Options)
	return err == nil && idmapped(m, opts)
}

// OpenSources opens the source of every bind mount of s that lies outside
// the rootfs, as the caller (host root) and in the mount namespace of
// process pid, the container's init, which has not mounted anything yet.
// An id-mapped mount's source becomes a detached mount with its mapping
// applied: the mount's own uid/gid mappings, or without any the user
// namespace of pid (runc's implied mapping). Relative sources are taken
// from the caller's working directory, as the init would.
func OpenSources(s *specs.Spec, rootfsPath string, pid int) (opened []OpenedSource, err error) {
	rootfsPath, err = cleanRootfs(rootfsPath)
	if err != nil {
		return nil, err
	}
	type job struct {
		i    int
		m    specs.Mount
		opts mountOpts
		src  string
		ns   int // user namespace for MOUNT_ATTR_IDMAP, -1 without
	}
	var jobs []job
	defer func() {
		for _, j := range jobs {
			if j.ns >= 0 {
				unix.Close(j.ns)
			}
		}
		if err != nil {
			for _, o := range opened {
				if o.File != nil {
					o.File.Close()
				}
			}
			opened = nil
		}
	}()
	for i, m := range s.Mounts {
		opts, perr := parseMountOptions(m.Options)
		if perr != nil || (m.Type != "bind" && opts.flags&unix.MS_BIND == 0) || m.Source == "" {
			continue
		}
		src, aerr := filepath.Abs(m.Source)
		if aerr != nil {
			return nil, fmt.Errorf("mounts[%d].source %q: %w", i, m.Source, aerr)
		}
		j := job{i: i, m: m, opts: opts, src: src, ns: -1}
		if idmapped(m, opts) {
			// Made here, on an ordinary thread: it starts a process.
			if len(m.UIDMappings) > 0 {
				j.ns, err = UsernsFd(m.UIDMappings, m.GIDMappings)
			} else {
				j.ns, err = unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			}
			if err != nil {
				return nil, fmt.Errorf("mounts[%d] (source %q): the user namespace to id-map it through: %w", i, m.Source, err)
			}
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	err = inMountNS(pid, func() error {
		for _, j := range jobs {
			f, inRoot, err := openSource(j.src, rootfsPath, nil)
			if err != nil {
				return fmt.Errorf("mounts[%d] (source %q, destination %q): bind source: %w", j.i, j.m.Source, j.m.Destination, err)
			}
			if f == nil {
				// An id-mapped one too: the init resolves it at its
				// turn and asks for the clone then (IdmapInRoot).
				opened = append(opened, OpenedSource{Mount: j.i, Source: Source{InRoot: inRoot}})
				continue
			}
			if j.ns < 0 {
				opened = append(opened, OpenedSource{Mount: j.i, Source: Source{File: f}})
				continue
			}
			tree, err := idmapTree(f, j.m, j.opts, j.ns)
			f.Close()
			if err != nil {
				return fmt.Errorf("mounts[%d] (source %q): %w", j.i, j.m.Source, err)
			}
			opened = append(opened, OpenedSource{Mount: j.i, Source: Source{File: tree, Tree: true}})
		}
		return nil
	})
	return opened, err
}

// IdmapInRoot makes the id-mapped clone of a bind source inside the
// rootfs that the init of a user-namespaced container resolved at the
// mount's turn: src is its O_PATH handle on it, for s.Mounts[mount], and
// pid the init. The init may not id-map it itself: that takes privilege
// over the filesystem holding the source, which only host root has. So the
// runtime, host root, clones it on a thread in the init's mount namespace:
// the source's mount is one of that namespace (the kernel clones no other),
// and a clone keeps the flags the kernel locked there, so a rootfs the
// host made read-only, nosuid, nodev or noexec stays so under the
// id-mapped bind. The caller owns the returned detached tree.
func IdmapInRoot(s *specs.Spec, rootfsPath string, mount int, src *os.File, pid int) (*os.File, error) {
	if mount < 0 || mount >= len(s.Mounts) {
		return nil, fmt.Errorf("the init asked for an id-mapped clone for mounts[%d], which does not exist", mount)
	}
	m := s.Mounts[mount]
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return nil, fmt.Errorf("mounts[%d]: %w", mount, err)
	}
	if (m.Type != "bind" && opts.flags&unix.MS_BIND == 0) || !idmapped(m, opts) {
		return nil, fmt.Errorf("the init asked for an id-mapped clone for mounts[%d] (destination %q), which is no id-mapped bind", mount, m.Destination)
	}
	rootfsPath, err = cleanRootfs(rootfsPath)
	if err != nil {
		return nil, err
	}
	var ns int
	if len(m.UIDMappings) > 0 {
		ns, err = UsernsFd(m.UIDMappings, m.GIDMappings)
	} else {
		ns, err = unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("mounts[%d] (source %q): the user namespace to id-map it through: %w", mount, m.Source, err)
	}
	defer unix.Close(ns)
	var tree *os.File
	err = inMountNS(pid, func() error {
		// The init resolved the source inside the rootfs; a handle that
		// names anything else is not cloned.
		p, err := fdPath(src)
		if err != nil {
			return err
		}
		if p != rootfsPath && !strings.HasPrefix(p, rootfsPath+"/") {
			return fmt.Errorf("the source the init resolved, %q, is outside the rootfs %q", p, rootfsPath)
		}
		tree, err = idmapTree(src, m, opts, ns)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mounts[%d] (source %q, destination %q): %w", mount, m.Source, m.Destination, err)
	}
	return tree, nil
}

// inMountNS runs fn on a thread of its own in the mount namespace of pid.
// The thread is never unlocked, so the Go runtime ends it with its
// goroutine and nothing else ever runs in that namespace.
func inMountNS(pid int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// setns(CLONE_NEWNS) refuses a thread sharing its root and cwd
		// with others.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("unshare(CLONE_FS) to enter the container's mount namespace: %w", err)
			return
		}
		ns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("the container init's mount namespace: %w", err)
			return
		}
		err = unix.Setns(ns, unix.CLONE_NEWNS)
		unix.Close(ns)
		if err != nil {
			done <- fmt.Errorf("entering the container init's mount namespace: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// idmapTree clones the mount at src (O_PATH) detached and id-maps it
// through the user namespace nsfd: recursively cloned for rbind, the
// mapping applied to every mount of the clone for ridmap, as runc does.
func idmapTree(src *os.File, m specs.Mount, opts mountOpts, nsfd int) (*os.File, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC | unix.AT_EMPTY_PATH)
	if opts.flags&unix.MS_REC != 0 || opts.ridmap {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", flags)
	if err != nil {
		return nil, fmt.Errorf("open_tree(OPEN_TREE_CLONE) of bind source: %w", err)
	}
	tree := os.NewFile(uintptr(fd), m.Source)
	setFlags := uint(unix.AT_EMPTY_PATH)
	if opts.ridmap {
		setFlags |= unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
	if err := unix.MountSetattr(fd, "", setFlags, attr); err != nil {
		tree.Close()
		return nil, fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP) on a clone of %q (the filesystem, %s, may not support idmapped mounts): %w", m.Source, fsName(m.Source), err)
	}
	return tree, nil
}

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// openSource resolves the absolute host path src: symlinks outside the
// rootfs are followed on the host, and once the walk enters rootfs the
// rest is resolved inside it. With root (the init, which holds the rootfs)
// that rest is opened there; without (the runtime) it is returned as
// inRoot for the init to open at the mount's turn. A procfs component
// (/proc/PID/ns/net: its magic links are not paths) ends the walk and the
// rest is opened as it is.
func openSource(src, rootfs string, root *os.File) (f *os.File, inRoot string, err error) {
	rest := strings.Split(src, "/")
	cur := "/"
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		next := filepath.Join(cur, c)
		if next == rootfs || strings.HasPrefix(next, rootfs+"/") {
			rel := filepath.Join(append([]string{"/", strings.TrimPrefix(next, rootfs)}, rest...)...)
			if root == nil {
				return nil, rel, nil
			}
			f, err := openInRoot(root, rel, 0)
			return f, "", err
		}
		if c == ".." {
			cur = next
			continue
		}
		fi, err := os.Lstat(next)
		if err != nil {
			return nil, "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		var st unix.Statfs_t
		if err := unix.Statfs(cur, &st); err == nil && st.Type == unix.PROC_SUPER_MAGIC {
			p := filepath.Join(append([]string{next}, rest...)...)
			fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, "", &os.PathError{Op: "open", Path: p, Err: err}
			}
			return os.NewFile(uintptr(fd), p), "", nil
		}
		if links++; links > maxSymlinks {
			return nil, "", &os.PathError{Op: "resolve", Path: src, Err: unix.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil, "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	// cur holds no symlink: one that appears there now is a race, refused.
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(unix.AT_FDCWD, cur, how)
	if errors.Is(err, unix.ENOSYS) {
		fd, err = unix.Open(cur, unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, "", &os.PathError{Op: "open", Path: cur, Err: err}
	}
	return os.NewFile(uintptr(fd), cur), "", nil
}
