package vmcontainer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/vmnet"
)

// ErrNoGuestNIC: the container has a network interface its guest kernel
// cannot carry. Running the payload without its network would be a
// silent downgrade, so the create fails instead.
var ErrNoGuestNIC = errors.New("the guest kernel has no virtio-net driver")

// Network bridges the VM container's network interfaces into its guest
// (pkg/vmnet): called by the runtime once the create hooks have put them
// in the container's network namespace (an engine's prestart hook does),
// with the init's pid. It returns the taps for the init to pass on to
// QEMU; none for a container without a network namespace of its own
// (the host's interfaces are never bridged) or with only lo.
func Network(stateDir string, initPid int) ([]*os.File, error) {
	c, err := InnerSpec(stateDir)
	if err != nil {
		return nil, err
	}
	if c.Spec == nil || !oci.HasNamespace(c.Spec, specs.NetworkNamespace) {
		return nil, nil
	}
	ns := fmt.Sprintf("/proc/%d/ns/net", initPid)
	if !c.NIC {
		names, err := vmnet.Interfaces(ns)
		if err != nil {
			return nil, err
		}
		if len(names) > 0 {
			return nil, fmt.Errorf("the container's network namespace has %s, but %w (%s): rebuild the minimal kernel with scripts/build-vm-kernel.sh, or set BULWARK_VM_KERNEL to Debian's /boot/vmlinuz-*; a container without a network (--net none) needs none",
				strings.Join(names, ", "), ErrNoGuestNIC, c.Kernel)
		}
		return nil, nil
	}
	return vmnet.Bridge(ns)
}
