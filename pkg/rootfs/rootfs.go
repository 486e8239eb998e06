package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Options carries what Prepare cannot learn from the spec alone.
//
// The cgroup layout of the host (v1, hybrid or unified) is not an option: it
// is detected from /sys/fs/cgroup, and the container's own cgroup is read
// from /proc/thread-self/cgroup at the first cgroup mount, by which time the
// init has been moved into it (BeforeCgroupMount).
type Options struct {
	// NoPivot is not used by Prepare; it is here so pkg/containerinit can keep one
	// value for the whole rootfs setup and pass o.NoPivot to Pivot.
	NoPivot bool
	// InUserNS: the init runs in a new user namespace, so mknod is refused
	// and device nodes are bind-mounted from the host; sysfs falls back to a
	// recursive bind of the host /sys when a fresh mount is refused.
	InUserNS bool
	// CgroupNS: the container has its own cgroup namespace, so "cgroup"
	// mounts are fresh cgroup filesystems (their root is the namespace root)
	// instead of binds of the container's cgroup directories.
	CgroupNS bool
	// RootTree, when set, is the detached rootfs mount the runtime made
	// (OpenRootTree); it is attached at rootfs instead of a self-bind.
	RootTree *os.File
	// HostMountNS: the config has no mount namespace, so the init works in
	// the host's mount table. Nothing may change the host's propagation or
	// bind the rootfs onto itself there; the spec mounts are made under the
	// rootfs (the runtime records and later removes them) and Chroot, not
	// Pivot, enters it.
	HostMountNS bool
	// Sources are the bind sources the runtime opened (OpenSources), by
	// index in the spec's mounts; the others the init resolves itself.
	Sources map[int]Source
	// IdmapInRoot, when set, asks the runtime for an id-mapped clone of
	// the bind source of s.Mounts[mount] inside the rootfs, which the init
	// resolved (src, O_PATH): an init in a user namespace may not id-map
	// it itself (rootfs.IdmapInRoot). It returns the detached tree.
	IdmapInRoot func(mount int, src *os.File) (*os.File, error)
	// BeforeCgroupMount, when set, runs before the first "cgroup" mount:
	// the init may start on the rootfs while the runtime still places it
	// in its cgroups, and a cgroup mount binds the init's own cgroup.
	BeforeCgroupMount func() error
	// FuseOverlay, when set, hands the runtime the /dev/fuse connection
	// mounted at the rootfs for an image snapshot the kernel's overlayfs
	// does not serve (oci.AnnotationStorageDriver), and returns once the
	// runtime started fuse-overlayfs on it.
	FuseOverlay func(dev *os.File, reason string) error
}

// Prepare builds the container's mount tree under rootfs, in runc's order:
// propagation of the whole tree, rootfs made a mount point, spec mounts in
// order, then /dev (devices, symlinks, ptmx). It does not pivot and does not
// make anything read-only that still needs writing; see Pivot and Finish.
func Prepare(s *specs.Spec, rootfs string, o Options) error {
	if s == nil {
		return errors.New("rootfs: nil spec")
	}
	rootfs, err := cleanRootfs(rootfs)
	if err != nil {
		return err
	}
	prop, err := rootPropagation(s)
	if err != nil {
		return err
	}
	if !o.HostMountNS {
		// Without the runtime's tree (a rootless runtime cannot make one)
		// the init sets the attributes the annotation asks for on its own
		// bind of the rootfs, which its user namespace owns.
		var attrs uint64
		if o.RootTree == nil {
			var idmap bool
			if idmap, attrs, _, err = RootTreeOptions(s); err != nil {
				return err
			}
			if idmap {
				return errors.New("the rootfs asks for an idmapped mount, which only the runtime can make, and it made none")
			}
		}
		var overlay *rootOverlay
		if opts := s.Annotations[oci.AnnotationRootfsOverlay]; opts != "" {
			if o.RootTree != nil {
				return errors.New("the rootfs is both an overlay the init mounts and a tree the runtime made")
			}
			driver := s.Annotations[oci.AnnotationStorageDriver]
			if !ValidDriver(driver) {
				return fmt.Errorf("annotations.%s: %q: want auto, overlay or fuse-overlayfs", oci.AnnotationStorageDriver, driver)
			}
			overlay = &rootOverlay{options: opts, driver: driver, serve: o.FuseOverlay}
		}
		if err := prepareRoot(rootfs, prop, o.RootTree, attrs, overlay); err != nil {
			return err
		}
	}
	// Opened after the self-bind so that every lookup walks the new mount.
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %q: %w", rootfs, err)
	}
	defer root.Close()

	mt := &mounter{root: root, rootfs: rootfs, o: o}
	for i, m := range s.Mounts {
		if err := mt.mount(i, m, o.Sources[i]); err != nil {
			return fmt.Errorf("mounts[%d] (type %q, source %q, destination %q): %w", i, m.Type, m.Source, m.Destination, err)
		}
	}
	if needsDevSetup(s) {
		if err := mt.setupDev(s); err != nil {
			return fmt.Errorf("setting up /dev in %q: %w", rootfs, err)
		}
	}
	return nil
}

func cleanRootfs(rootfs string) (string, error) {
	if rootfs == "" {
		return "", errors.New("rootfs: empty rootfs path")
	}
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return "", fmt.Errorf("rootfs %q: %w", rootfs, err)
	}
	// The rootfs path itself comes from the trusted bundle config, so
	// resolving its symlinks on the host is intended; everything below it is
	// untrusted and resolved with securejoin.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("rootfs %q: %w", rootfs, err)
	}
	if real == "/" {
		return "", errors.New("rootfs: refusing to use the host root / as container rootfs")
	}
	return real, nil
}

var propagationNames = map[string]int{
	"":            unix.MS_SLAVE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

func rootPropagation(s *specs.Spec) (int, error) {
	var name string
	if s.Linux != nil {
		name = s.Linux.RootfsPropagation
	}
	flag, ok := propagationNames[name]
	if !ok {
		return 0, fmt.Errorf("linux.rootfsPropagation: unknown value %q (want shared, slave, private, unbindable or their r-prefixed forms)", name)
	}
	return flag, nil
}

// prepareRoot stops mount events flowing back to the host before anything
// is mounted, then turns rootfs into a mount point so pivot_root accepts it.
func prepareRoot(rootfs string, prop int, tree *os.File, attrs uint64, overlay *rootOverlay) error {
	if err := unix.Mount("", "/", "", uintptr(prop), ""); err != nil {
		return fmt.Errorf("setting propagation %#x on /: %w", prop, err)
	}
	// pivot_root refuses a shared parent, and a bind under a shared parent
	// would propagate into the host namespace.
	parentFlag := unix.MS_PRIVATE
	if prop&unix.MS_SLAVE != 0 {
		parentFlag = unix.MS_SLAVE
	}
	for p := rootfs; ; p = filepath.Dir(p) {
		err := unix.Mount("", p, "", uintptr(parentFlag), "")
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINVAL) || p == "/" {
			return fmt.Errorf("making the mount holding %q non-shared: %w", rootfs, err)
		}
	}
	if tree != nil {
		return attachRootTree(tree, rootfs)
	}
	if overlay != nil {
		if err := overlay.mount(rootfs); err != nil {
			return err
		}
	} else if err := unix.Mount(rootfs, rootfs, "bind", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting rootfs %q onto itself: %w", rootfs, err)
	}
	if attrs != 0 {
		attr := &unix.MountAttr{Attr_set: attrs}
		if err := unix.MountSetattr(unix.AT_FDCWD, rootfs, unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("mount_setattr(%#x) on the bind of rootfs %q: %w", attrs, rootfs, err)
		}
	}
	return nil
}

// needsDevSetup: a /dev that is a bind (e.g. of the host /dev) or a
// devtmpfs is taken as-is; a tmpfs /dev, or none at all, gets populated.
func needsDevSetup(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if cleanDest(m.Destination) != "/dev" {
			continue
		}
		opts, err := parseMountOptions(m.Options)
		if err != nil {
			return true
		}
		if m.Type == "tmpfs" && opts.flags&unix.MS_BIND == 0 {
			continue
		}
		return false
	}
	return true
}

func cleanDest(p string) string { return filepath.Clean("/" + p) }

func procFd(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// mounter holds the rootfs handle every lookup is anchored to.
type mounter struct {
	root   *os.File
	rootfs string
	o      Options
	cg     *cgroupInfo
}

// inRoot reports whether an absolute host path lies strictly below rootfs.
func (mt *mounter) inRoot(p string) bool {
	return strings.HasPrefix(p, mt.rootfs+"/")
}

// fdPath is the host path the kernel holds for f; used to verify that
// securejoin's result stayed inside the rootfs.
func fdPath(f *os.File) (string, error) {
	p, err := os.Readlink(procFd(f))
	if err != nil {
		return "", fmt.Errorf("reading back the path of %q: %w", f.Name(), err)
	}
	return p, nil
}

// openat2 is a variable so a test can take the path of kernels before 5.6.
var openat2 = unix.Openat2

// openInRoot resolves rel inside the rootfs with openat2(RESOLVE_IN_ROOT),
// which the kernel confines to root, symlinks and ".." included. It is
// pathrs.OpenatInRoot without the procfs read-back that only gives the
// returned *os.File its resolved name: six syscalls and a dup per lookup,
// about a quarter of the init's time in rootfs setup. Callers that need
// the resolved path check it themselves (fdPath). Kernels without openat2
// get pathrs, which has its own safe fallback.
func openInRoot(root *os.File, rel string, flags uint64) (*os.File, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC | flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	var err error
	// EAGAIN: a rename or mount elsewhere raced the lookup and the kernel
	// could not prove it stayed inside root; retrying is what it asks.
	for range 32 {
		var fd int
		fd, err = openat2(int(root.Fd()), rel, how)
		if err == nil {
			return os.NewFile(uintptr(fd), rel), nil
		}
		if err != unix.EAGAIN {
			break
		}
	}
	if err != unix.ENOSYS {
		return nil, &os.PathError{Op: "openat2 in rootfs", Path: rel, Err: err}
	}
	f, err := pathrs.OpenatInRoot(root, rel)
	if err != nil || flags&unix.O_DIRECTORY == 0 {
		return f, err
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open in rootfs", Path: rel, Err: unix.ENOTDIR}
	}
	return f, nil
}

// dirInRoot returns a handle to directory rel inside the rootfs, creating
// it and its parents when missing. An existing directory is one openat2.
// A missing last component under an existing parent (/dev/pts, /dev/shm in
// the fresh /dev tmpfs: every start) is a mkdirat and an O_NOFOLLOW open
// relative to the parent's handle, so a symlink raced into its place
// cannot redirect it. Deeper creation is pathrs.MkdirAllHandle's.
func (mt *mounter) dirInRoot(rel string) (*os.File, error) {
	f, err := openInRoot(mt.root, rel, unix.O_DIRECTORY)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	rel = filepath.Clean("/" + rel)
	if parentRel, base := filepath.Split(rel); base != "" && base != "." && base != ".." {
		if parent, perr := openInRoot(mt.root, parentRel, unix.O_DIRECTORY); perr == nil {
			defer parent.Close()
			// EEXIST: a dangling symlink is there; pathrs creates its
			// target inside the rootfs, as before.
			if err := unix.Mkdirat(int(parent.Fd()), base, 0o755); err == nil {
				fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return nil, &os.PathError{Op: "open in rootfs", Path: rel, Err: err}
				}
				return os.NewFile(uintptr(fd), rel), nil
			} else if !errors.Is(err, unix.EEXIST) {
				return nil, &os.PathError{Op: "mkdir in rootfs", Path: rel, Err: err}
			}
		}
	}
	return pathrs.MkdirAllHandle(mt.root, rel, 0o755)
}

// openTarget resolves dest inside the rootfs and returns an O_PATH handle
// to it, creating a directory (or an empty file when file is true) if it
// is missing. existed reports whether it was already there.
func (mt *mounter) openTarget(dest string, file bool) (f *os.File, existed bool, err error) {
	rel := cleanDest(dest)
	if rel == "/" {
		return nil, false, errors.New("refusing to mount over the container's root itself")
	}
	f, err = openInRoot(mt.root, rel, 0)
	switch {
	case err == nil:
		existed = true
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, fmt.Errorf("resolving %q inside rootfs: %w", rel, err)
	default:
		// A symlink on the way may dangle (an image's /etc/hosts linking
		// into a directory not made yet): what is made is its target,
		// resolved inside the rootfs, as runc makes it. The creation
		// below stays confined to the rootfs whatever the path holds by
		// then, and fdPath checks where it landed.
		if real, jerr := securejoin.SecureJoin(mt.rootfs, rel); jerr == nil && mt.inRoot(real) {
			rel = strings.TrimPrefix(real, mt.rootfs)
		}
		if file {
			f, err = mt.createFile(rel, 0o644)
		} else {
			f, err = mt.dirInRoot(rel)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("creating mount point %q inside rootfs: %w", rel, err)
	}
	full, err := fdPath(f)
	switch {
	case err != nil:
	case full == mt.rootfs:
		err = fmt.Errorf("mount point %q resolves (through a symlink) to the rootfs itself; refusing to cover the container's root", rel)
	case !mt.inRoot(full):
		err = fmt.Errorf("mount point %q resolved to %q, outside rootfs %q", rel, full, mt.rootfs)
	}
	if err != nil {
		f.Close()
		return nil, false, err
	}
	return f, existed, nil
}

// createFile makes an empty file at rel (parents created inside the
// rootfs) and returns an O_PATH handle to it.
func (mt *mounter) createFile(rel string, mode uint32) (*os.File, error) {
	dir, base := filepath.Split(rel)
	parent, err := mt.dirInRoot(dir)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, mode)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "create", Path: rel, Err: err}
	}
	if err == nil {
		unix.Close(fd)
	}
	return openInRoot(mt.root, rel, 0)
}

// reopen returns a handle to whatever is now mounted at f's path: the
// O_PATH handle used as a mount target still names the covered directory.
func (mt *mounter) reopen(f *os.File) (*os.File, error) {
	full, err := fdPath(f)
	if err != nil {
		return nil, err
	}
	if !mt.inRoot(full) {
		return nil, fmt.Errorf("mount point moved outside rootfs: %q", full)
	}
	rel := strings.TrimPrefix(full, mt.rootfs)
	g, err := openInRoot(mt.root, rel, 0)
	if err != nil {
		return nil, fmt.Errorf("re-opening mount point %q: %w", rel, err)
	}
	if again, err := fdPath(g); err != nil || again != full {
		g.Close()
		return nil, fmt.Errorf("mount point %q was moved while re-opening it (now %q)", full, again)
	}
	return g, nil
}

func mountFd(source string, target *os.File, fstype string, flags int, data string) error {
	if err := unix.Mount(source, procFd(target), fstype, uintptr(flags), data); err != nil {
		return fmt.Errorf("mount(source=%q, target=%q, type=%q, flags=%#x, data=%q): %w",
			source, target.Name(), fstype, flags, data, err)
	}
	return nil
}

func (mt *mounter) mount(i int, m specs.Mount, src Source) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("destination %q must be an absolute path", m.Destination)
	}
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return err
	}
	if idmapped(m, opts) && opts.flags&unix.MS_BIND == 0 && m.Type != "bind" {
		return errors.New(`id-mapped mounts ("idmap"/"ridmap" or uidMappings/gidMappings) are only supported on bind mounts`)
	}
	switch {
	case m.Type == "bind" || opts.flags&unix.MS_BIND != 0:
		return mt.bind(i, m, opts, src)
	case m.Type == "cgroup":
		return mt.cgroup(m, opts)
	default:
		return mt.fs(m, opts)
	}
}

func (mt *mounter) bind(i int, m specs.Mount, opts mountOpts, src Source) error {
	if m.Source == "" {
		return errors.New("bind mount needs a source")
	}
	if src.File == nil {
		// Resolved now, at the mount's turn: a source below an earlier
		// mount of the config shows that mount.
		var err error
		if src.InRoot != "" {
			src.File, err = openInRoot(mt.root, src.InRoot, 0)
		} else {
			var abs string
			if abs, err = filepath.Abs(m.Source); err == nil {
				src.File, _, err = openSource(abs, mt.rootfs, mt.root)
			}
		}
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		defer src.File.Close()
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.File.Fd()), &st); err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	target, _, err := mt.openTarget(m.Destination, st.Mode&unix.S_IFMT != unix.S_IFDIR)
	if err != nil {
		return err
	}
	defer target.Close()
	// The source as this process reaches it: the handle, never the path
	// again (the source behind a path may be another by now).
	source := procFd(src.File)
	if err := mt.checkProcMount(target, "bind", source); err != nil {
		return err
	}
	switch {
	case src.Tree:
		err = attachTree(src.File, m.Source, target)
	case idmapped(m, opts) && mt.o.InUserNS && mt.o.IdmapInRoot != nil:
		var tree *os.File
		if tree, err = mt.o.IdmapInRoot(i, src.File); err == nil {
			err = attachTree(tree, m.Source, target)
			tree.Close()
		}
	case idmapped(m, opts):
		err = idmappedBind(m, opts, src.File, target)
	default:
		err = mountFd(source, target, "", unix.MS_BIND|opts.flags&unix.MS_REC, "")
	}
	if err != nil {
		return err
	}
	top, err := mt.reopen(target)
	if err != nil {
		return err
	}
	defer top.Close()
	// MS_BIND ignores every other flag; they need a second, remount call.
	if opts.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 || opts.clear != 0 {
		if err := remountBind(top, source, opts.flags, opts.clear); err != nil {
			return err
		}
	}
	return applyPropagationAndAttrs(top, opts)
}

// remountBind applies flags to an existing bind mount. In a user namespace
// the flags inherited from a more privileged mount (ro, nosuid, nodev,
// noexec, atime) are locked: dropping them is EPERM, so on failure the
// source's current flags are kept and the call retried, unless the user
// explicitly asked to clear a locked flag, which cannot be honoured.
func remountBind(top *os.File, source string, flags, clear int) error {
	flags |= unix.MS_BIND | unix.MS_REMOUNT
	err := mountFd("", top, "", flags, "")
	if err == nil {
		return nil
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(source, &st); serr != nil {
		return fmt.Errorf("%w (and statfs of source %q failed: %v)", err, source, serr)
	}
	src := statfsToMountFlags(st)
	if locked := src & clear & mntLockFlags; locked != 0 {
		return fmt.Errorf("cannot clear flags %#x locked on source %q: %w", locked, source, err)
	}
	if flags&mntAtimeFlags != 0 && flags&mntAtimeFlags != src&mntAtimeFlags {
		return fmt.Errorf("cannot change atime flags locked on source %q (%#x): %w", source, src&mntAtimeFlags, err)
	}
	if err2 := mountFd("", top, "", flags|src&mntLockFlags, ""); err2 != nil {
		return fmt.Errorf("remount keeping locked flags %#x of %q: %w", src&mntLockFlags, source, err2)
	}
	return nil
}

const (
	mntAtimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME
	mntLockFlags  = unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSUID | mntAtimeFlags
)

func statfsToMountFlags(st unix.Statfs_t) int {
	var flags int
	for _, f := range []struct{ st, ms int }{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_MANDLOCK, unix.MS_MANDLOCK},
		{unix.ST_SYNCHRONOUS, unix.MS_SYNCHRONOUS},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{0x2000 /* ST_NOSYMFOLLOW */, unix.MS_NOSYMFOLLOW},
	} {
		if int(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	// strictatime is the absence of the other atime modes; statfs has no bit.
	if flags&(unix.MS_NOATIME|unix.MS_RELATIME) == 0 {
		flags |= unix.MS_STRICTATIME
	}
	return flags
}

func applyPropagationAndAttrs(top *os.File, opts mountOpts) error {
	for _, p := range opts.propagation {
		if err := mountFd("", top, "", p, ""); err != nil {
			return fmt.Errorf("setting propagation: %w", err)
		}
	}
	if opts.recAttr != nil {
		if err := unix.MountSetattr(int(top.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, opts.recAttr); err != nil {
			return fmt.Errorf("mount_setattr(AT_RECURSIVE, set=%#x, clr=%#x) on %q: %w",
				opts.recAttr.Attr_set, opts.recAttr.Attr_clr, top.Name(), err)
		}
	}
	return nil
}

// fs mounts a fresh (non-bind) filesystem.
func (mt *mounter) fs(m specs.Mount, opts mountOpts) error {
	dest := cleanDest(m.Destination)
	target, existed, err := mt.openTarget(dest, false)
	if err != nil {
		return err
	}
	defer target.Close()
	if m.Type == "proc" || m.Type == "sysfs" {
		// Mounting procfs/sysfs through a symlink has been the vehicle of
		// several runc CVEs; demand a real directory at the literal path.
		full, err := fdPath(target)
		if err != nil {
			return err
		}
		if full != mt.rootfs+dest {
			// "must be mounted on ordinary directory": runc's words, which
			// its suite and scripts match.
			return fmt.Errorf("%s must be mounted on ordinary directory, but %q resolves to %q", m.Type, dest, strings.TrimPrefix(full, mt.rootfs))
		}
		if fi, err := os.Stat(procFd(target)); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s must be mounted on a directory, %q is not one", m.Type, dest)
		}
	}
	if err := mt.checkProcMount(target, m.Type, m.Source); err != nil {
		return err
	}

	data := opts.data
	flags := opts.flags
	switch m.Type {
	case "tmpfs":
		// Keep the mode of the directory being covered, like runc, so a
		// 1777 /tmp in the image stays 1777.
		if existed && !opts.hasData("mode") {
			var st unix.Stat_t
			if err := unix.Fstat(int(target.Fd()), &st); err == nil {
				data = append([]string{fmt.Sprintf("mode=%04o", st.Mode&07777)}, data...)
			}
		}
	case "devpts":
		// Without its own instance the container would share the host's
		// ptys; without ptmxmode the pts/ptmx the /dev/ptmx symlink points
		// at would be unusable (default mode 000).
		if !opts.hasData("newinstance") {
			data = append(data, "newinstance")
		}
		if !opts.hasData("ptmxmode") {
			data = append(data, "ptmxmode=0666")
		}
		data = devptsMax(data)
	}
	// A read-only tmpfs or /dev still has to be populated; Finish makes it
	// read-only afterwards.
	if m.Type == "tmpfs" || dest == "/dev" {
		flags &^= unix.MS_RDONLY
	}
	source := m.Source
	if source == "" {
		source = m.Type
	}
	err = mountFd(source, target, m.Type, flags, strings.Join(data, ","))
	if err != nil && m.Type == "sysfs" && mt.o.InUserNS && errors.Is(err, unix.EPERM) {
		// A user namespace that does not own the network namespace may not
		// mount sysfs; the host's /sys, bound recursively and with the
		// requested flags, is runc's fallback.
		if err2 := mountFd("/sys", target, "", unix.MS_BIND|unix.MS_REC, ""); err2 != nil {
			return fmt.Errorf("%w; fallback bind of /sys also failed: %v", err, err2)
		}
		top, err3 := mt.reopen(target)
		if err3 != nil {
			return err3
		}
		defer top.Close()
		if err3 := remountBind(top, "/sys", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts.clear); err3 != nil {
			return err3
		}
		return applyPropagationAndAttrs(top, opts)
	}
	if err != nil {
		return err
	}
	top, err := mt.reopen(target)
	if err != nil {
		return err
	}
	defer top.Close()
	if opts.tmpcopyup && m.Type == "tmpfs" && existed {
		// target still names the covered directory, top the new tmpfs.
		if err := copyUp(procFd(target), procFd(top)); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	return applyPropagationAndAttrs(top, opts)
}

const procRootIno = 1

// DevptsMax is the most ptys one container's devpts instance may hold.
// Every devpts instance but the host's draws from kernel.pty.max less
// kernel.pty.reserve (4096 - 1024 by default): without a max one container
// takes them all and no other container, nor a `docker exec -t`, gets a
// terminal. 256 is far more than shells, sshd or tmux sessions use, and
// twelve containers at their limit still leave the pool usable.
const DevptsMax = 256

// devptsMax adds max=DevptsMax to devpts mount data, or lowers a larger
// max the config asks for: a config must not lift one container's share.
func devptsMax(data []string) []string {
	out := make([]string, 0, len(data)+1)
	for _, d := range data {
		if v, ok := strings.CutPrefix(d, "max="); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= DevptsMax {
				out = append(out, d)
				continue
			}
			// Dropped: replaced by max=DevptsMax below.
			continue
		}
		out = append(out, d)
	}
	for _, d := range out {
		if strings.HasPrefix(d, "max=") {
			return out
		}
	}
	return append(out, fmt.Sprintf("max=%d", DevptsMax))
}

// checkProcMount refuses to cover the container's /proc or anything below
// it, which would let a config hide masked paths or fake kernel interfaces,
// except for procfs itself and the files lxcfs is known to emulate.
func (mt *mounter) checkProcMount(target *os.File, fstype, source string) error {
	full, err := fdPath(target)
	if err != nil {
		return err
	}
	procDir := mt.rootfs + "/proc"
	if full != procDir && !strings.HasPrefix(full, procDir+"/") {
		return nil
	}
	if full == procDir {
		if fstype == "proc" {
			return nil
		}
		if fstype == "bind" {
			var sfs unix.Statfs_t
			var st unix.Stat_t
			if unix.Statfs(source, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC &&
				unix.Stat(source, &st) == nil && st.Ino == procRootIno {
				return nil
			}
		}
		return fmt.Errorf("only a procfs (or the root of one) may be mounted on /proc, not %s %q", fstype, source)
	}
	rel := strings.TrimPrefix(full, mt.rootfs)
	switch rel {
	case "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
		"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
		"/proc/sys/crypto/fips_enabled":
		return nil
	}
	return fmt.Errorf("refusing to mount over %q: mounts inside /proc are limited to the files lxcfs emulates", rel)
}
