package userface

import (
	"fmt"
	"io"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootless"
)

// rootlessUserNamespace gives a rootless run's container its user
// namespace: root is the caller, ids above are the caller's subordinate
// ranges (pkg/rootless.IDMaps).
func rootlessUserNamespace(s *specs.Spec) error {
	uids, gids, err := rootless.IDMaps()
	if err != nil {
		return fmt.Errorf("rootless user namespace: %w", err)
	}
	return policy.WithIDMappings(uids, gids)(s)
}

// withoutLimits drops the cgroup limits of a rootless run's spec where
// no cgroup can be had, and says so in one line on w: the run goes on
// with everything else of the default (the runtime refuses a bundle with
// limits it cannot enforce; a person's run asked for none of these by
// hand unless a flag set them, and the line names them).
func withoutLimits(s *specs.Spec, w io.Writer) {
	ok, why := rootless.Cgroups()
	if ok || s.Linux == nil || s.Linux.Resources == nil {
		return
	}
	r := s.Linux.Resources
	var dropped []string
	if r.Pids != nil && r.Pids.Limit != nil {
		dropped = append(dropped, fmt.Sprintf("pids %d", *r.Pids.Limit))
	}
	if r.Memory != nil && r.Memory.Limit != nil {
		dropped = append(dropped, fmt.Sprintf("memory %d MiB", *r.Memory.Limit>>20))
	}
	if r.CPU != nil {
		dropped = append(dropped, "cpu")
	}
	if r.BlockIO != nil {
		dropped = append(dropped, "blkio")
	}
	s.Linux.Resources = &specs.LinuxResources{Devices: r.Devices}
	if len(dropped) > 0 {
		fmt.Fprintf(w, "bulwark: rootless: cgroup limits not enforced (%s): %s; everything else of the default applies\n", strings.Join(dropped, ", "), why)
	}
}
