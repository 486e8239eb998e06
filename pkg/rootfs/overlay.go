package rootfs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// An engine (Docker, Podman, containerd) hands over its rootfs as an
// overlayfs mount, and the kernel cannot idmap an overlayfs mount
// (mount_setattr says EINVAL), while it can mount an overlay over
// idmapped layers. So a user-namespaced container whose rootfs is an
// engine's overlay gets a second overlay over the same layers, each an
// idmapped clone: files keep their on-disk owners inside the container,
// and what container root writes lands in the engine's upper directory
// owned by the on-disk root, as the engine itself would have written it.
// The two overlays share the upper directory; overlayfs allows that only
// with index=off (which the second mount sets). Each has a work directory of
// its own: mounting an overlay empties its work directory, so a second mount
// on the engine's would leave the engine's mount unable to copy anything up
// (docker cp into a directory of the image failed with ENOENT). A change
// made through the engine's mount while the container runs (docker cp)
// reaches the container for names it has not looked up yet: overlayfs
// caches, per directory, whether it has an upper part.

// ErrNotRelayerable is wrapped when an overlay's layers cannot be found
// from its mount options (relative paths, escapes, data-only layers).
var ErrNotRelayerable = errors.New("overlay layers cannot be read from the mount table")

// overlayMount is an overlayfs mount's layers and other options.
type overlayMount struct {
	lower       []string
	upper, work string
	// opts are the other options as fsconfig takes them: "key" for a
	// flag, "key=value" otherwise.
	opts []string
	// readOnly makes the new overlay's superblock read-only.
	readOnly bool
}

// overlayAt returns the overlay mounted exactly at path, or nil when path
// is not the mount point of an overlayfs.
func overlayAt(path string) (*overlayMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var super string
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		if unescapeMountinfo(fields[4]) != path {
			continue
		}
		// The last entry for a mount point is the one on top.
		found = fields[sep+1] == "overlay"
		super = fields[sep+3]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	if strings.Contains(super, `\`) {
		return nil, fmt.Errorf("overlay at %s: %w (escaped characters in %q)", path, ErrNotRelayerable, super)
	}
	o := &overlayMount{}
	for _, opt := range strings.Split(super, ",") {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "rw", "ro":
		case "lowerdir":
			if strings.Contains(v, "::") {
				return nil, fmt.Errorf("overlay at %s: %w (data-only layers)", path, ErrNotRelayerable)
			}
			o.lower = append(o.lower, strings.Split(v, ":")...)
		case "lowerdir+":
			o.lower = append(o.lower, v)
		case "datadir+":
			return nil, fmt.Errorf("overlay at %s: %w (data-only layers)", path, ErrNotRelayerable)
		case "upperdir":
			o.upper = v
		case "workdir":
			o.work = v
		case "index", "nfs_export":
			// The second mount shares the upper directory: index=off is the
			// only way overlayfs allows that, and nfs_export needs index.
		default:
			o.opts = append(o.opts, opt)
		}
	}
	for _, p := range append(append([]string{}, o.lower...), o.upper, o.work) {
		if p == "" && (o.upper != "" || o.work != "") {
			return nil, fmt.Errorf("overlay at %s: %w (upperdir without workdir)", path, ErrNotRelayerable)
		}
		if p != "" && !filepath.IsAbs(p) {
			return nil, fmt.Errorf("overlay at %s: %w (relative layer path %q)", path, ErrNotRelayerable, p)
		}
	}
	if len(o.lower) == 0 {
		return nil, fmt.Errorf("overlay at %s: %w (no lowerdir)", path, ErrNotRelayerable)
	}
	return o, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// IsOverlayMount reports whether path is the mount point of an overlayfs.
func IsOverlayMount(path string) bool {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil || st.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return false
	}
	o, err := overlayAt(filepath.Clean(path))
	return o != nil || err != nil
}

// RelayerOverlay mounts, detached, a new overlay over idmapped clones of
// the layers of the overlay mounted at rootfs, with attrs (MOUNT_ATTR_*)
// on the new mount. uid and gid are the container's maps.
func RelayerOverlay(rootfs string, uid, gid []specs.LinuxIDMapping, attrs uint64) (*os.File, error) {
	o, err := overlayAt(filepath.Clean(rootfs))
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, fmt.Errorf("rootfs %s is not an overlayfs mount point", rootfs)
	}
	// The host's restrictions on its overlay hold for the new one. The new
	// mount is not a copy the kernel locks, so read-only goes on the
	// superblock, which only the host may make writable again; nosuid,
	// nodev and noexec can only be mount attributes, which container root
	// with CAP_SYS_ADMIN could clear (the device cgroup still stands behind
	// nodev).
	var st unix.Statfs_t
	if err := unix.Statfs(rootfs, &st); err != nil {
		return nil, fmt.Errorf("statfs rootfs %s: %w", rootfs, err)
	}
	for _, f := range []struct{ st, attr uint64 }{
		{unix.ST_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.ST_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.ST_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.ST_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if uint64(st.Flags)&f.st != 0 {
			attrs |= f.attr
		}
	}
	o.readOnly = uint64(st.Flags)&unix.ST_RDONLY != 0
	nsfd, err := UsernsFd(uid, gid)
	if err != nil {
		return nil, err
	}
	defer unix.Close(nsfd)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	clone := func(dir string) (string, error) {
		fd, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return "", fmt.Errorf("open_tree(%q, OPEN_TREE_CLONE): %w", dir, err)
		}
		fds = append(fds, fd)
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				return "", fmt.Errorf("overlay layer %s on %s: %w (mount_setattr: %v)", dir, fsName(dir), ErrNoIdmap, err)
			}
			return "", fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP) on a clone of overlay layer %q: %w", dir, err)
		}
		return fmt.Sprintf("/proc/self/fd/%d", fd), nil
	}
	lower := make([]string, len(o.lower))
	for i, l := range o.lower {
		if lower[i], err = clone(l); err != nil {
			return nil, err
		}
	}
	var upper, work string
	if o.upper != "" {
		// upperdir and workdir must be on one mount: clone the directory
		// holding both.
		common := filepath.Dir(o.upper)
		for !strings.HasPrefix(o.work, common+"/") && common != "/" {
			common = filepath.Dir(common)
		}
		ours, err := ownWorkdir(o.work)
		if err != nil {
			return nil, err
		}
		base, err := clone(common)
		if err != nil {
			return nil, err
		}
		rel := func(p string) string { return base + "/" + strings.TrimPrefix(strings.TrimPrefix(p, common), "/") }
		upper, work = rel(o.upper), rel(ours)
	}

	var mfd int
	err = asContainerRoot(uid, gid, func() error {
		var err error
		mfd, err = mountOverlay(rootfs, o, lower, upper, work, attrs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(mfd), "rootfs-tree"), nil
}

// ownWorkdir makes (or finds, on a restart) the second overlay's work
// directory beside the engine's: on the same filesystem and mount, as
// overlayfs requires, and inside the engine's layer directory, so the
// engine's removal of the container takes it along.
func ownWorkdir(engineWork string) (string, error) {
	p := filepath.Join(filepath.Dir(engineWork), ".bulwark-"+filepath.Base(engineWork))
	if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("overlay work directory for the idmapped rootfs: %w", err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return "", fmt.Errorf("overlay work directory for the idmapped rootfs: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("overlay work directory for the idmapped rootfs: %s is not a directory", p)
	}
	return p, nil
}

// asContainerRoot runs fn with the container's root as filesystem
// identity: overlayfs keeps the credentials that create it and does its own
// work in the upper directory (the work directory, copy-up) with them, and
// through an idmapped upper layer only ids of the container's range map to
// the disk; the host's root would get EOVERFLOW and a read-only mount. fn
// runs on a locked thread that is thrown away after, and with it the
// changed credentials.
func asContainerRoot(uid, gid []specs.LinuxIDMapping, fn func() error) error {
	hostID := func(ms []specs.LinuxIDMapping) (int, error) {
		for _, m := range ms {
			if m.ContainerID == 0 {
				return int(m.HostID), nil
			}
		}
		return 0, errors.New("the maps give the container's root no host id")
	}
	u, err := hostID(uid)
	if err != nil {
		return err
	}
	g, err := hostID(gid)
	if err != nil {
		return err
	}
	ch := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			ch <- fmt.Errorf("capget: %w", err)
			return
		}
		unix.Setfsgid(g)
		unix.Setfsuid(u)
		// Leaving fsuid 0 drops the filesystem capabilities from the
		// effective set; copy-up needs them (chown, fowner) back.
		data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			ch <- fmt.Errorf("capset: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// mountOverlay makes the detached overlay; the caller's credentials become
// the overlay's creator's.
func mountOverlay(rootfs string, o *overlayMount, lower []string, upper, work string, attrs uint64) (int, error) {
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen(overlay): %w", err)
	}
	defer unix.Close(fs)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fs, k, v); err != nil {
			return fmt.Errorf("overlay over idmapped layers of %s: %s=%s: %w", rootfs, k, v, err)
		}
		return nil
	}
	if err := set("lowerdir", strings.Join(lower, ":")); err != nil {
		return -1, err
	}
	if upper != "" {
		if err := set("upperdir", upper); err != nil {
			return -1, err
		}
		if err := set("workdir", work); err != nil {
			return -1, err
		}
		if err := set("index", "off"); err != nil {
			return -1, err
		}
	}
	for _, opt := range o.opts {
		k, v, hasV := strings.Cut(opt, "=")
		if hasV {
			err = unix.FsconfigSetString(fs, k, v)
		} else {
			err = unix.FsconfigSetFlag(fs, k)
		}
		if err != nil {
			return -1, fmt.Errorf("overlay over idmapped layers of %s: option %s: %w", rootfs, opt, err)
		}
	}
	if o.readOnly {
		if err := unix.FsconfigSetFlag(fs, "ro"); err != nil {
			return -1, fmt.Errorf("overlay over idmapped layers of %s: option ro: %w", rootfs, err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("overlay over idmapped layers of %s: %w", rootfs, err)
	}
	mfd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, int(attrs))
	if err != nil {
		return -1, fmt.Errorf("fsmount of the overlay over idmapped layers of %s: %w", rootfs, err)
	}
	return mfd, nil
}

// CheckIdmap reports whether the kernel can idmap path (nil) or why not:
// a plain directory or file is probed with a clone of its mount tree; the
// mount point of an engine's overlay, which cannot be idmapped itself, by
// its layers (RelayerOverlay). nsfd is a user namespace to idmap through.
// Nothing is left mounted.
func CheckIdmap(path string, nsfd int) error {
	if IsOverlayMount(path) {
		o, err := overlayAt(filepath.Clean(path))
		if err != nil {
			return err
		}
		dirs := append([]string{}, o.lower...)
		if o.upper != "" {
			dirs = append(dirs, filepath.Dir(o.upper))
		}
		for _, d := range dirs {
			if err := probeIdmap(d, nsfd, false); err != nil {
				return err
			}
		}
		return nil
	}
	return probeIdmap(path, nsfd, true)
}

func probeIdmap(path string, nsfd int, recursive bool) error {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	set := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
		set |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, flags)
	if err != nil {
		return fmt.Errorf("open_tree(%q, OPEN_TREE_CLONE): %w", path, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
	if err := unix.MountSetattr(fd, "", set, attr); err != nil {
		return fmt.Errorf("%s on %s (or a mount under it): %w (mount_setattr: %v)", path, fsName(path), ErrNoIdmap, err)
	}
	return nil
}
