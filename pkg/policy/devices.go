package policy

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// DeviceNode is a private device node a user-namespaced container needs on
// the host. In a user namespace the init cannot mknod, and the host's node,
// bound in, belongs to host root, whom the container's root is not: opening
// it fails with EACCES. So, as LXD does, the runtime makes a node with the
// same numbers owned by the host ids the device's owner maps to, and the
// spec binds that node instead (WithDeviceNodes). Access stays limited to
// these nodes by the devices cgroup rules WithDevice added.
type DeviceNode struct {
	Path         string // the device's path in the container, for errors
	Mode         uint32 // unix.S_IFCHR or unix.S_IFBLK, with permissions 0600
	Major, Minor int64
	UID, GID     uint32 // host ids
}

// DeviceNodes returns the nodes to make for linux.devices, one per device
// in order; none without a user namespace or devices, where the spec is
// fine as it is.
func DeviceNodes(s *specs.Spec) ([]DeviceNode, error) {
	if s.Linux == nil || !oci.HasNamespace(s, specs.UserNamespace) || len(s.Linux.Devices) == 0 {
		return nil, nil
	}
	nodes := make([]DeviceNode, 0, len(s.Linux.Devices))
	for i, d := range s.Linux.Devices {
		var typ uint32
		switch d.Type {
		case "c", "u":
			typ = unix.S_IFCHR
		case "b":
			typ = unix.S_IFBLK
		default:
			return nil, fmt.Errorf("linux.devices[%d] %s: type %q cannot be given to a user-namespaced container", i, d.Path, d.Type)
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
			return nil, fmt.Errorf("linux.devices[%d] %s: owner %d:%d is not mapped into the user namespace", i, d.Path, uid, gid)
		}
		nodes = append(nodes, DeviceNode{Path: d.Path, Mode: typ | 0o600, Major: d.Major, Minor: d.Minor, UID: huid, GID: hgid})
	}
	return nodes, nil
}

// WithDeviceNodes binds the host nodes made for DeviceNodes (sources, in
// the same order) over the devices' paths and drops linux.devices, which
// the init could not create; the cgroup rules stay in linux.resources.
func WithDeviceNodes(sources []string) Option {
	return func(s *specs.Spec) error {
		l := linux(s)
		if len(sources) != len(l.Devices) {
			return fmt.Errorf("device nodes: %d made for %d devices", len(sources), len(l.Devices))
		}
		for i, d := range l.Devices {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: d.Path, Type: "bind", Source: sources[i], Options: []string{"bind", "nosuid", "noexec"}})
		}
		l.Devices = nil
		return nil
	}
}

func hostID(ms []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, m := range ms {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}
