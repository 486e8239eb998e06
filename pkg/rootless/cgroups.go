package rootless

import (
	"os"
	"sync"
)

// Cgroups reports whether a rootless runtime can give its containers
// cgroups of their own, and if not, why: the reason the one line a
// person's rootless run prints names.
//
// On cgroup v1 it never can: each hierarchy belongs to root, and the
// kernel has no way to hand a subtree to a user that would stop that user
// from escaping the limits (v1 has no delegation model). On cgroup v2 a
// subtree can be delegated (systemd's Delegate=yes on user@UID.service);
// Bulwark does not place rootless containers there yet.
var Cgroups = sync.OnceValues(func() (bool, string) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		return false, "this host uses cgroup v1, whose hierarchies belong to root and cannot be delegated to a user"
	}
	return false, "placing rootless containers in a delegated cgroup v2 subtree is not implemented yet"
})
