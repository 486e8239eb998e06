package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupHier is one hierarchy the init process belongs to.
type cgroupHier struct {
	controllers string // "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2
	path        string // the init's cgroup inside that hierarchy
	mountpoint  string // where the hierarchy is mounted in our namespace
	mountRoot   string // the hierarchy directory that mount shows at its mountpoint
}

// source is the host directory of the init's own cgroup in this hierarchy.
func (h cgroupHier) source() (string, error) {
	rel, err := filepath.Rel(h.mountRoot, h.path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("own cgroup %q is not visible under the mount of %q at %s (mount root %q)", h.path, h.controllers, h.mountpoint, h.mountRoot)
	}
	return filepath.Join(h.mountpoint, rel), nil
}

type cgroupInfo struct {
	unified bool         // /sys/fs/cgroup is cgroup2 (pure v2 host)
	v1      []cgroupHier // legacy hierarchies (v1 and the v1 part of hybrid)
	v2      *cgroupHier  // the cgroup2 hierarchy, if mounted (v2 or hybrid "unified")
}

// readCgroupInfo pairs /proc/thread-self/cgroup with /proc/self/mountinfo. The
// init has been placed in its cgroup before rootfs setup, so its own view
// is the container's cgroup.
func readCgroupInfo() (*cgroupInfo, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &sfs); err != nil {
		return nil, fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	info := &cgroupInfo{unified: sfs.Type == unix.CGROUP2_SUPER_MAGIC}

	// thread-self: the init makes its cgroup namespace on its own thread
	// (pkg/containerinit), and the paths here must be that namespace's view.
	f, err := os.Open("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	own := map[string]string{} // controllers -> path; "" -> cgroup2 path
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		own[parts[1]] = parts[2]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/thread-self/cgroup: %w", err)
	}

	mounts, err := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) {
		return i.FSType != "cgroup" && i.FSType != "cgroup2", false
	})
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	seen := map[string]bool{}
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			p, ok := own[""]
			if !ok || info.v2 != nil {
				continue
			}
			info.v2 = &cgroupHier{path: p, mountpoint: m.Mountpoint, mountRoot: m.Root}
			continue
		}
		supers := map[string]bool{}
		for _, o := range strings.Split(m.VFSOptions, ",") {
			supers[o] = true
		}
		for ctrls, p := range own {
			if ctrls == "" || seen[ctrls] {
				continue
			}
			match := true
			for _, c := range strings.Split(ctrls, ",") {
				if !supers[c] {
					match = false
				}
			}
			if match {
				seen[ctrls] = true
				info.v1 = append(info.v1, cgroupHier{controllers: ctrls, path: p, mountpoint: m.Mountpoint, mountRoot: m.Root})
			}
		}
	}
	return info, nil
}

// cgroup mounts a "cgroup" type mount.
//
// Unified host: a fresh cgroup2 with a cgroup namespace (its root is the
// container's cgroup); without one, a bind of the container's own cgroup
// directory, so the host tree is never exposed.
//
// v1/hybrid host (runc's layout): a tmpfs at the destination, one
// directory per hierarchy named like the host's mountpoint, holding either a
// fresh cgroup mount of those controllers (cgroup namespace) or a bind of
// the container's cgroup in it, plus symlinks for co-mounted controllers
// (cpu -> cpu,cpuacct). Unlike runc, the hybrid cgroup2 hierarchy is also
// given, as "unified", so systemd inside sees the same hybrid layout as the
// host. Everything is nosuid,nodev,noexec and read-only if "ro" was asked;
// the tmpfs itself is always left read-only.
func (mt *mounter) cgroup(m specs.Mount, opts mountOpts) error {
	if mt.cg == nil && mt.o.BeforeCgroupMount != nil {
		if err := mt.o.BeforeCgroupMount(); err != nil {
			return err
		}
	}
	if mt.cg == nil {
		info, err := readCgroupInfo()
		if err != nil {
			return fmt.Errorf("reading the container's cgroups: %w", err)
		}
		mt.cg = info
	}
	cg := mt.cg
	dest := cleanDest(m.Destination)
	base := opts
	base.flags |= unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	base.data = nil

	if cg.unified {
		if cg.v2 == nil {
			return errors.New("cgroup2 host but no cgroup2 mount or 0:: line in /proc/thread-self/cgroup")
		}
		return mt.cgroupHierarchy(dest, *cg.v2, "cgroup2", base)
	}

	tmpfs := specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: dest}
	tmpOpts := mountOpts{flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, data: []string{"mode=755"}, propagation: opts.propagation}
	if err := mt.fs(tmpfs, tmpOpts); err != nil {
		return fmt.Errorf("tmpfs for cgroup v1 hierarchies: %w", err)
	}
	dir, _, err := mt.openTarget(dest, false)
	if err != nil {
		return err
	}
	defer dir.Close()
	for _, h := range cg.v1 {
		name := filepath.Base(h.mountpoint)
		if err := mt.cgroupHierarchyIn(dir, name, filepath.Join(dest, name), h, "cgroup", base); err != nil {
			return fmt.Errorf("cgroup hierarchy %q: %w", h.controllers, err)
		}
		if strings.Contains(name, ",") {
			for _, c := range strings.Split(name, ",") {
				if err := unix.Symlinkat(name, int(dir.Fd()), c); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("symlink %s/%s -> %s: %w", dest, c, name, err)
				}
			}
		}
	}
	if cg.v2 != nil {
		if err := mt.cgroupHierarchyIn(dir, "unified", filepath.Join(dest, "unified"), *cg.v2, "cgroup2", base); err != nil {
			return fmt.Errorf("cgroup2 hierarchy: %w", err)
		}
	}
	// Nothing needs to be created in the tmpfs any more; a writable one
	// would let the container shadow hierarchies with its own directories.
	if err := mountFd("", dir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("making the cgroup tmpfs read-only: %w", err)
	}
	return nil
}

// cgroupHierarchy mounts one hierarchy at dest (inside the rootfs).
func (mt *mounter) cgroupHierarchy(dest string, h cgroupHier, fstype string, opts mountOpts) error {
	if mt.o.CgroupNS {
		target, _, err := mt.openTarget(dest, false)
		if err != nil {
			return err
		}
		defer target.Close()
		if done, err := mountCgroupFS(target, h, fstype, opts, func() (*os.File, error) { return mt.reopen(target) }); done || err != nil {
			return err
		}
	}
	src, err := h.source()
	if err != nil {
		return err
	}
	bindOpts := opts
	bindOpts.flags |= unix.MS_BIND | unix.MS_REC
	return mt.bind(-1, specs.Mount{Type: "bind", Source: src, Destination: dest}, bindOpts, Source{})
}

// mountCgroupFS mounts a new cgroup (v1) or cgroup2 filesystem of h on
// target, scoped by the container's cgroup namespace, and applies opts to
// its root (reopen finds it once mounted). done is false, with no error,
// when the kernel refused in a way the scoped bind of the runtime's view
// works around: a user namespace that does not own the cgroup namespace
// cannot mount.
func mountCgroupFS(target *os.File, h cgroupHier, fstype string, opts mountOpts, reopen func() (*os.File, error)) (done bool, err error) {
	source, data := "cgroup", h.controllers
	if fstype == "cgroup2" {
		source, data = "cgroup2", ""
	}
	err = mountFd(source, target, fstype, opts.flags&^unix.MS_BIND, data)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	top, err := reopen()
	if err != nil {
		return true, err
	}
	defer top.Close()
	return true, applyPropagationAndAttrs(top, opts)
}

// cgroupHierarchyIn mounts one hierarchy at name in dir, the tmpfs this init
// mounted for the v1 layout a moment ago. That tmpfs is new, empty and
// private to the init (no process of the container has run yet), so the
// securejoin walk, the procfs read-backs and the /proc check that
// openTarget, bind and reopen do for arbitrary destinations buy nothing
// here, and on a v1 host they were a third of the init's CPU time (one set
// per hierarchy, eleven on Debian). The handles are still taken with
// O_NOFOLLOW|O_DIRECTORY on a single path component relative to the tmpfs
// root, so nothing but a real directory in that tmpfs can be a target.
// Idmapped options keep the general path.
func (mt *mounter) cgroupHierarchyIn(dir *os.File, name, dest string, h cgroupHier, fstype string, opts mountOpts) error {
	if opts.idmap || opts.ridmap || name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return mt.cgroupHierarchy(dest, h, fstype, opts)
	}
	if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating mount point %q: %w", dest, err)
	}
	// Opened after the mount, the same lookup lands on the mounted root.
	open := func() (*os.File, error) {
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening mount point %q: %w", dest, err)
		}
		return os.NewFile(uintptr(fd), dest), nil
	}
	target, err := open()
	if err != nil {
		return err
	}
	defer target.Close()
	if mt.o.CgroupNS {
		if done, err := mountCgroupFS(target, h, fstype, opts, open); done || err != nil {
			return err
		}
	}
	src, err := h.source()
	if err != nil {
		return err
	}
	if err := mountFd(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := open()
	if err != nil {
		return err
	}
	defer top.Close()
	// MS_BIND ignores every other flag; they need the remount (bind does the same).
	flags := opts.flags | unix.MS_BIND | unix.MS_REC
	if flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 || opts.clear != 0 {
		if err := remountBind(top, src, flags, opts.clear); err != nil {
			return err
		}
	}
	return applyPropagationAndAttrs(top, opts)
}
