package containerinit

import (
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/netns"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// loopbackUp brings up lo in a network namespace the container created
// (the init still holds its capabilities in the user namespace that owns
// it). A namespace the runtime made ahead (cfg.NetNSReady) has lo up
// already.
func loopbackUp(s *specs.Spec) error {
	if oci.CreatesNamespace(s, specs.NetworkNamespace) {
		return netns.LoopbackUp()
	}
	return nil
}
