package rootfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// idmappedBind attaches a clone of the source (src, an O_PATH handle) at
// target with its ownership shifted through m's uidMappings/gidMappings:
// for an init that is host root (no user namespace; with one the runtime
// makes the tree: OpenSources, or IdmapInRoot for a source inside the
// rootfs). open_tree(OPEN_TREE_CLONE) gives a detached copy,
// mount_setattr(MOUNT_ATTR_IDMAP) shifts it, and move_mount puts it on the
// already-resolved target fd, so the target is never looked up by path
// again.
func idmappedBind(m specs.Mount, opts mountOpts, src, target *os.File) error {
	if len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0 {
		return errors.New(`"idmap"/"ridmap" without uidMappings and gidMappings take the container's user namespace mapping, and the container has no user namespace`)
	}
	nsfd, err := UsernsFd(m.UIDMappings, m.GIDMappings)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	tree, err := idmapTree(src, m, opts, nsfd)
	if err != nil {
		return err
	}
	defer tree.Close()
	return attachTree(tree, m.Source, target)
}

// attachTree moves the detached mount tree onto the resolved target.
func attachTree(tree *os.File, source string, target *os.File) error {
	if err := unix.MoveMount(int(tree.Fd()), "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount of the id-mapped %q onto %q: %w", source, target.Name(), err)
	}
	return nil
}

// UsernsFd returns an fd of a new user namespace with the given maps, for
// MOUNT_ATTR_IDMAP (the container's rootfs and volumes, an image's layers). The
// kernel only takes a mapping from a real namespace, so a throwaway child
// is created in one; PTRACE_TRACEME stops it at its first execve, so it
// never runs any code, and it is killed once its namespace is held open.
func UsernsFd(uid, gid []specs.LinuxIDMapping) (int, error) {
	conv := func(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, 0, len(ms))
		for _, m := range ms {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		return out
	}
	// The maps are written by hand rather than through SysProcAttr: the
	// init runs in the container's pid namespace while /proc is still the
	// host's, so Go's /proc/<pid>/uid_map would name some host process
	// (pid 2 is kthreadd) instead of our child.
	p, err := os.StartProcess("/proc/self/exe", []string{"bulwark-idmap-userns"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, Ptrace: true},
	})
	if err != nil {
		return -1, fmt.Errorf("creating a user namespace for the idmapped mount (uid map %v, gid map %v): %w", uid, gid, err)
	}
	defer func() {
		_ = p.Kill()
		// Reap by hand: a traced child also reports its stop, which
		// os.Process.Wait would mistake for the end.
		for {
			var ws unix.WaitStatus
			_, err := unix.Wait4(p.Pid, &ws, 0, nil)
			if err != nil && !errors.Is(err, unix.EINTR) || err == nil && (ws.Exited() || ws.Signaled()) {
				break
			}
		}
		_ = p.Release()
	}()
	procPid, err := procfsPid(p.Pid)
	if err != nil {
		return -1, fmt.Errorf("creating a user namespace for the idmapped mount: %w", err)
	}
	dir := "/proc/" + strconv.Itoa(procPid) + "/"
	for _, w := range []struct {
		file string
		ms   []syscall.SysProcIDMap
	}{{"uid_map", conv(uid)}, {"gid_map", conv(gid)}} {
		var b strings.Builder
		for _, m := range w.ms {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		if err := os.WriteFile(dir+w.file, []byte(b.String()), 0); err != nil {
			return -1, fmt.Errorf("idmapped mount: writing %s of its user namespace: %w", w.file, err)
		}
	}
	fd, err := unix.Open(dir+"ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the idmap user namespace: %w", err)
	}
	return fd, nil
}

// procfsPid translates a pid of our pid namespace into the one /proc uses
// (the host's, until the container's own proc is mounted): a pidfd's
// fdinfo reports its pid in the namespace of the proc mount it is read from.
func procfsPid(pid int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	defer unix.Close(pidfd)
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(pidfd))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pid:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("pidfd fdinfo of %d: bad Pid %q", pid, v)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("pidfd fdinfo of %d has no Pid line", pid)
}

// ErrNoIdmap is returned by IdmapOnto when the filesystem under the source
// (or one of its submounts) cannot be idmapped on this kernel.
var ErrNoIdmap = errors.New("the kernel cannot idmap this filesystem")

// IdmapOnto attaches at target (an existing directory) a recursive clone of
// the tree at source with its ownership shifted through the maps (each
// entry: on-disk id ContainerID appears as host id HostID), nosuid and
// nodev. The caller must be privileged in the host's user namespace: the
// person face uses it for -v volumes before the init exists, and owns the
// mount it leaves.
func IdmapOnto(source, target string, uid, gid []specs.LinuxIDMapping) error {
	nsfd, err := UsernsFd(uid, gid)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	return IdmapOntoVia(source, target, nsfd)
}

// IdmapOntoVia is IdmapOnto through an existing user namespace (UsernsFd),
// for a caller that idmaps several sources with one set of maps.
func IdmapOntoVia(source, target string, nsfd int) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, source, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree(%q, OPEN_TREE_CLONE): %w", source, err)
	}
	defer unix.Close(tree)
	attr := &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(nsfd),
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			return fmt.Errorf("%s on %s (or a mount under it): %w (mount_setattr: %v)", source, fsName(source), ErrNoIdmap, err)
		}
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP) on a clone of %q: %w", source, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount of idmapped %q onto %q: %w", source, target, err)
	}
	return nil
}
