package policy

// The floor's user namespace.
//
// Threat: without a user namespace, root in a container is root on the
// host to every kernel check that is not namespaced: a file it reaches
// through a leaked fd or a bind of the host's disk, a device it gets to
// open, a kernel bug that lets it out of its namespaces. Docker, Podman
// and containerd hand Bulwark configs without one by default. The floor
// adds one, as Kubernetes does for a pod with hostUsers: false: container
// ids 0-65535 map to a range of the host's user namespace pool, and the
// rootfs and the bind mounts are idmapped so that files keep the
// ownership they have on the disk (pkg/floorns does the host's part).
//
// Configs that share the host's network, PID or IPC namespace keep
// running without one (the kernel lets a user namespace mount neither
// /proc nor sysfs nor mqueue for namespaces it does not own, and a
// process in the host's PID namespace sees the host's processes as
// nobody's), and so do configs whose process runs as an id above the
// range or that mount a filesystem from a device; each case is logged,
// and policy.json's "userns": "require" refuses them instead.

import (
	"fmt"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Values of HardenConfig.Userns.
const (
	UsernsAuto    = "auto"    // add one where the config allows (the default)
	UsernsOff     = "off"     // never add one
	UsernsRequire = "require" // refuse a config that cannot have one
)

// AllowHostUsers in oci.AnnotationAllow keeps a container in the host's
// user namespace (Kubernetes' hostUsers: true).
const AllowHostUsers = "host-users"

// FloorUsernsSize is the number of ids the floor's user namespace maps.
const FloorUsernsSize = 65536

// floorUsernsMountTypes are the mount types a user-namespaced container
// can still have: binds are idmapped, the rest are made inside the
// container's own namespaces (sysfs falls back to a read-only bind of the
// host's /sys where the network namespace is not the container's).
var floorUsernsMountTypes = []string{"", "bind", "rbind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "none"}

// FloorUsernsBlocker says why s cannot be given the floor's user namespace
// (the config alone decides; pkg/floorns adds what only the host can tell,
// such as a namespace path that is the host's own), or "" when it can.
// hostNS reports whether a namespace of s is the host's: listed with no
// entry at all, or joined by a path to the host's.
func FloorUsernsBlocker(s *specs.Spec, cfg HardenConfig, hostNS func(specs.LinuxNamespaceType) bool) string {
	switch cfg.Userns {
	case UsernsOff:
		return `policy.json says "userns": "off"`
	}
	if s.Linux == nil {
		return "the config has no linux section"
	}
	if oci.HasNamespace(s, specs.UserNamespace) {
		return "the config brings its own user namespace"
	}
	for _, w := range hardenSplitAllow(s.Annotations[oci.AnnotationAllow]) {
		if w == AllowHostUsers || w == AllowPrivileged {
			return fmt.Sprintf("allowed by %s: %s", oci.AnnotationAllow, w)
		}
	}
	if slices.Contains(cfg.Allow, AllowHostUsers) {
		return fmt.Sprintf(`policy.json's "allow" holds %s`, AllowHostUsers)
	}
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.IPCNamespace, specs.MountNamespace} {
		if hostNS(t) {
			return fmt.Sprintf("it shares the host's %s namespace, which a user namespace cannot own", t)
		}
	}
	if p := s.Process; p != nil {
		ids := append([]uint32{p.User.UID, p.User.GID}, p.User.AdditionalGids...)
		for _, id := range ids {
			if id >= FloorUsernsSize {
				return fmt.Sprintf("the process runs with id %d, above the %d ids the user namespace maps", id, FloorUsernsSize)
			}
		}
	}
	for i, m := range s.Mounts {
		if !slices.Contains(floorUsernsMountTypes, m.Type) && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
			return fmt.Sprintf("mounts[%d] (%s) mounts a %s filesystem, which needs the host's root", i, m.Destination, m.Type)
		}
	}
	return ""
}
