package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func charDev(path string, major, minor int64) specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var id uint32
	return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &id, GID: &id}
}

// DefaultDevices are the nodes every container gets in a tmpfs /dev. The
// /dev/ptmx symlink and the devpts instance are handled separately.
func DefaultDevices() []specs.LinuxDevice {
	return []specs.LinuxDevice{
		charDev("/dev/null", 1, 3),
		charDev("/dev/zero", 1, 5),
		charDev("/dev/full", 1, 7),
		charDev("/dev/random", 1, 8),
		charDev("/dev/urandom", 1, 9),
		charDev("/dev/tty", 5, 0),
	}
}

// DefaultDeviceRules are the devices-cgroup allow rules matching
// DefaultDevices plus /dev/ptmx (c 5:2) and the pts slaves (c 136:*). They
// are allow rules only: the cgroup code is expected to start from deny-all,
// and no mknod wildcard is granted (the container gets no new nodes).
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(major, minor int64) specs.LinuxDeviceCgroup {
		ma, mi := major, minor
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &ma, Access: "rwm"}
		if minor >= 0 {
			r.Minor = &mi
		}
		return r
	}
	var rules []specs.LinuxDeviceCgroup
	for _, d := range DefaultDevices() {
		rules = append(rules, rule(d.Major, d.Minor))
	}
	return append(rules, rule(5, 2), rule(136, -1))
}

func (mt *mounter) setupDev(s *specs.Spec) error {
	devs := DefaultDevices()
	if s.Linux != nil {
		// A spec device with a default path replaces the default entry.
		for _, d := range s.Linux.Devices {
			replaced := false
			for i := range devs {
				if cleanDest(devs[i].Path) == cleanDest(d.Path) {
					devs[i], replaced = d, true
				}
			}
			if !replaced {
				devs = append(devs, d)
			}
		}
	}
	for i, d := range devs {
		if cleanDest(d.Path) == "/dev/ptmx" {
			continue // always the pts/ptmx symlink, see below
		}
		if err := mt.createDevice(d); err != nil {
			return fmt.Errorf("device %d (%s %d:%d at %q): %w", i, d.Type, d.Major, d.Minor, d.Path, err)
		}
	}

	dev, err := mt.dirInRoot("/dev")
	if err != nil {
		return fmt.Errorf("opening /dev inside rootfs: %w", err)
	}
	defer dev.Close()
	if full, err := fdPath(dev); err != nil || !mt.inRoot(full) {
		return fmt.Errorf("/dev resolved outside rootfs (%q): %v", full, err)
	}
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	// Only link what the kernel provides (CONFIG_PROC_KCORE).
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink /dev/%s -> %s: %w", l[1], l[0], err)
		}
	}
	if hasDevpts(s) {
		if err := unix.Unlinkat(int(dev.Fd()), "ptmx", 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("removing /dev/ptmx to replace it with a symlink: %w", err)
		}
		if err := unix.Symlinkat("pts/ptmx", int(dev.Fd()), "ptmx"); err != nil {
			return fmt.Errorf("symlink /dev/ptmx -> pts/ptmx: %w", err)
		}
	}
	return nil
}

func hasDevpts(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if m.Type == "devpts" && cleanDest(m.Destination) == "/dev/pts" {
			return true
		}
	}
	return false
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("unknown device type %q (want c, u, b or p)", t)
}

// createDevice makes d inside the rootfs. Any path inside the rootfs is
// allowed, as in runc; the path is resolved with securejoin, so a symlinked
// /dev cannot carry the node outside.
func (mt *mounter) createDevice(d specs.LinuxDevice) error {
	if !filepath.IsAbs(d.Path) {
		return errors.New("device path must be absolute")
	}
	typ, err := deviceType(d.Type)
	if err != nil {
		return err
	}
	rel := cleanDest(d.Path)
	if rel == "/" {
		return errors.New("device path cannot be /")
	}
	dirName, base := filepath.Split(rel)
	dir, err := mt.dirInRoot(dirName)
	if err != nil {
		return fmt.Errorf("creating parent %q inside rootfs: %w", dirName, err)
	}
	defer dir.Close()
	if full, err := fdPath(dir); err != nil || (!mt.inRoot(full) && full != mt.rootfs) {
		return fmt.Errorf("parent %q resolved outside rootfs (%q): %v", dirName, full, err)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	if typ == unix.S_IFIFO {
		dev = 0
	}
	if !mt.o.InUserNS {
		err = unix.Mknodat(int(dir.Fd()), base, typ|mode, dev)
		if err == nil || errors.Is(err, unix.EEXIST) {
			return finishDeviceNode(dir, base, typ, uint64(dev), mode, d, err == nil)
		}
		if !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("mknod: %w", err)
		}
		// EPERM: a user namespace the caller did not tell us about, or a
		// nodev-locked parent; binding the host node still works.
	}
	return bindDevice(dir, base, d.Path, typ, uint64(dev))
}

// finishDeviceNode checks that what sits at base is the node we asked for
// (an image may ship a different file there) and, for a node we made
// ourselves (made), sets mode and owner, which mknod's umask handling would
// otherwise get wrong. An existing node is left alone, as runc does: it may
// be a host node bind-mounted in (a host /dev, a config mount), and
// chmod/chown would change the host's node for everyone.
func finishDeviceNode(dir *os.File, base string, typ uint32, dev uint64, mode uint32, d specs.LinuxDevice, made bool) error {
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening new node: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat of new node: %w", err)
	}
	if st.Mode&unix.S_IFMT != typ || (typ != unix.S_IFIFO && st.Rdev != dev) {
		return fmt.Errorf("an existing file at the device path is not device %d:%d (mode %#o, rdev %d:%d); remove it from the image",
			unix.Major(dev), unix.Minor(dev), st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if !made {
		return nil
	}
	if err := unix.Chmod(procFd(f), mode); err != nil {
		return fmt.Errorf("chmod %#o: %w", mode, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
	}
	return nil
}

// bindDevice covers an empty file with the host's node at the same path,
// the only way to get a device into a user-namespaced container.
func bindDevice(dir *os.File, base, hostPath string, typ uint32, dev uint64) error {
	var st unix.Stat_t
	if err := unix.Stat(hostPath, &st); err != nil {
		return fmt.Errorf("host node %q to bind-mount (mknod is not possible here): %w", hostPath, err)
	}
	if st.Mode&unix.S_IFMT != typ || (typ != unix.S_IFIFO && st.Rdev != dev) {
		return fmt.Errorf("host node %q is %d:%d (mode %#o), not the requested device; cannot bind it",
			hostPath, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode)
	}
	// O_EXCL: opening an existing node for real could have side effects
	// (a tty, a tape); an existing entry is only reused through O_PATH.
	fd, err := unix.Openat(int(dir.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0)
	if errors.Is(err, unix.EEXIST) {
		fd, err = unix.Openat(int(dir.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		var est unix.Stat_t
		if err == nil && (unix.Fstat(fd, &est) != nil || est.Mode&unix.S_IFMT == unix.S_IFLNK || est.Mode&unix.S_IFMT == unix.S_IFDIR) {
			unix.Close(fd)
			return fmt.Errorf("an existing symlink or directory at the device path %q cannot be a bind target; remove it from the image", base)
		}
	}
	if err != nil {
		return fmt.Errorf("creating bind target for %q: %w", hostPath, err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	return mountFd(hostPath, f, "", unix.MS_BIND, "")
}
