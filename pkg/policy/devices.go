package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// PrepareDeviceNodes makes the spec's devices usable in a user namespace.
// There the init cannot mknod, and the host's node, bound in, belongs to
// host root, whom the container's root is not: opening it fails with
// EACCES. So, as LXD does, the runtime creates a private node with the
// same major:minor in dir (the container's bundle), owned by the host id
// that the device's owner maps to, and the spec binds that node instead.
// Access stays limited to these nodes by the devices cgroup rules
// WithDevice added. Without a user namespace the spec is left alone.
func PrepareDeviceNodes(s *specs.Spec, dir string) error {
	if s.Linux == nil || !oci.HasNamespace(s, specs.UserNamespace) || len(s.Linux.Devices) == 0 {
		return nil
	}
	nodes := dir
	if err := os.MkdirAll(nodes, 0o711); err != nil {
		return fmt.Errorf("device nodes: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("device nodes in %s: %w", dir, err)
	}
	if st.Flags&unix.ST_NODEV != 0 {
		return fmt.Errorf("device nodes in %s: the filesystem is mounted nodev, so the container could not open them; /dev itself should never be nodev", dir)
	}
	for i, d := range s.Linux.Devices {
		var typ uint32
		switch d.Type {
		case "c", "u":
			typ = unix.S_IFCHR
		case "b":
			typ = unix.S_IFBLK
		default:
			return fmt.Errorf("linux.devices[%d] %s: type %q cannot be given to a user-namespaced container", i, d.Path, d.Type)
		}
		var uid, gid uint32
		if d.UID != nil {
			uid = *d.UID
		}
		if d.GID != nil {
			gid = *d.GID
		}
		huid, ok1 := hostID(s.Linux.UIDMappings, uid)
		hgid, ok2 := hostID(s.Linux.GIDMappings, gid)
		if !ok1 || !ok2 {
			return fmt.Errorf("linux.devices[%d] %s: owner %d:%d is not mapped into the user namespace", i, d.Path, uid, gid)
		}
		node := filepath.Join(nodes, strconv.Itoa(i))
		if err := os.Remove(node); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if err := unix.Mknod(node, typ|0o600, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("linux.devices[%d] %s: mknod: %w", i, d.Path, err)
		}
		if err := os.Lchown(node, int(huid), int(hgid)); err != nil {
			return fmt.Errorf("linux.devices[%d] %s: chown: %w", i, d.Path, err)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: d.Path, Type: "bind", Source: node, Options: []string{"bind", "nosuid", "noexec"}})
	}
	// The binds replace them; the cgroup rules stay in linux.resources.
	s.Linux.Devices = nil
	return nil
}

func hostID(ms []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, m := range ms {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}
