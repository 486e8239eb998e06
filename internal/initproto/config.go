package initproto

import "github.com/opencontainers/runtime-spec/specs-go"

// InitConfig is what the runtime tells the init in the config frame, the
// first frame after the constructor's bootstrap. It travels in
// internal/wire's encoding, not JSON: the init is a fresh process, and
// encoding/json's first decode of the OCI spec cost it 0.45 ms of set-up on
// the critical path of every start, whatever the config's size.
type InitConfig struct {
	ID      string
	Bundle  string
	Rootfs  string
	Spec    *specs.Spec
	Process *specs.Process
	// Exec is true for `bulwark exec`: join an existing container, no rootfs work.
	Exec bool
	// NoPivot selects MS_MOVE + chroot instead of pivot_root (--no-pivot).
	NoPivot   bool
	NewUserNS bool
	// CgroupNS: the container has a new cgroup namespace, which the init
	// makes itself once it is in its cgroups.
	CgroupNS bool
	// PreserveFds: fds 3..3+N-1 are passed to the payload (--preserve-fds).
	PreserveFds int
	// ConsoleFd is a connected --console-socket to send the pty master to; -1 if none.
	ConsoleFd int
	// FifoFd is the O_PATH fd of exec.fifo whose opening gates `start`; -1 for exec.
	FifoFd int
	// RootTree says the config frame's first fd is a detached mount of the
	// rootfs the runtime prepared (idmapped, nosuid, nodev:
	// rootfs.OpenRootTree), attached in place of the rootfs self-bind.
	RootTree bool
	// Sources are bind sources the runtime resolved for an init in a user
	// namespace (rootfs.OpenSources); their fds are attached to the config
	// frame, after the root tree's.
	Sources []MountSource
	// SeccompProgram is linux.seccomp compiled to BPF by the runtime (from
	// its cache when it can), so the init does not run libseccomp.
	SeccompProgram []byte
	// NetNSReady: the runtime created the new network namespace, with lo
	// up, and the constructor joined it (pkg/netns).
	NetNSReady bool
	// NetNSFd is the fd that namespace came in (-1: none); the constructor
	// joined it through /proc/self/fd, and the init closes it.
	NetNSFd int
	// SendNamespaces: the init sends its user and network namespaces
	// (a Namespaces frame) once it is in its cgroups, before the Hooks
	// frame.
	SendNamespaces bool
	// CgroupPending: the runtime sent this config before placing the init
	// in its cgroups, so that the init's rootfs work overlaps those writes
	// (about a millisecond across the eleven v1 hierarchies). A Cgroup
	// frame follows; the init reads it before its first cgroup mount and
	// in any case before it sends anything.
	CgroupPending bool
	// State is the container state passed to createContainer/startContainer hooks.
	State *specs.State
}

// MountSource is the source of Spec.Mounts[Mount]: the config frame's
// attached fd number File (an O_PATH handle, or with Tree a detached
// id-mapped mount), or with File -1 a path InRoot inside the rootfs.
type MountSource struct {
	Mount  int
	File   int
	Tree   bool
	InRoot string
}
