package userface

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// noSetIDFiles refuses set-user-id and set-group-id modes to a container
// that writes through an idmapped mount onto a host directory (what names
// it: the rootfs, a volume). The idmap stores what the container's root
// makes there as owned by the directory's owner (host root, for a person's
// rootfs), and the path must be traversable by the container's
// unprivileged root, so it usually is by every local user: a set-user-id
// copy of a shell planted there ran as host root for anyone. Inside the
// container no_new_privs makes the bits inert anyway; what is lost is a
// package manager installing a set-id program into such a directory (an
// image's snapshot, which nobody else can reach, keeps them). An
// unconfined container (no seccomp) is left as asked.
func noSetIDFiles(s *specs.Spec, what string) error {
	if s.Linux == nil {
		return nil
	}
	if err := profiles.WithoutSetIDFiles(s.Linux.Seccomp); err != nil {
		return fmt.Errorf("%s is written through an idmapped mount: %w", what, err)
	}
	return nil
}

// writesRootfsThroughIdmap: the rootfs is a host directory the container
// writes to through an idmapped mount.
func writesRootfsThroughIdmap(s *specs.Spec) bool {
	if s.Root == nil || s.Root.Readonly {
		return false
	}
	idmap, _, _, err := rootfs.RootTreeOptions(s)
	return err == nil && idmap
}
