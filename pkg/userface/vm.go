package userface

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/vm"
)

// ErrVMUnsupported: a run option the VM does not carry into the guest yet.
var ErrVMUnsupported = errors.New("not supported with --isolation vm yet")

// checkVM refuses, before anything is made on the host, what a VM run
// cannot carry into the guest yet: never silently dropped.
func checkVM(o *Options) error {
	if o.Isolation != oci.IsolationVM && o.Isolation != oci.IsolationVMStrict && o.Profile != "vm" {
		return nil
	}
	switch {
	case o.Image != "":
		return fmt.Errorf("IMAGE: %w (give a ROOTFS directory)", ErrVMUnsupported)
	case len(o.Volumes) > 0:
		return fmt.Errorf("--volume: %w", ErrVMUnsupported)
	case len(o.Devices) > 0:
		return fmt.Errorf("--device: %w", ErrVMUnsupported)
	case o.TTY:
		return fmt.Errorf("--tty: %w", ErrVMUnsupported)
	case o.Detach:
		return fmt.Errorf("--detach: %w", ErrVMUnsupported)
	case o.Net == "host":
		// The guest has a network stack of its own: the host's
		// interfaces cannot be bridged into it (pkg/vmnet).
		return fmt.Errorf("--net host: %w (the guest has its own kernel and network stack; use --net bridge or a network)", ErrVMUnsupported)
	case strings.HasPrefix(o.Net, "container:"):
		// Bridging the shared namespace's interface into this guest
		// would take every frame away from the other container.
		return fmt.Errorf("--net %s: %w (the guest would take the other container's interface)", o.Net, ErrVMUnsupported)
	case isUserNet(o.Net):
		return fmt.Errorf("--net %s: %w (use --net bridge or a network)", o.Net, ErrVMUnsupported)
	}
	return nil
}

// vmFacts adds what this host offers --isolation vm to check's facts: the
// accelerator the probe chose and why, and the parts a VM needs.
func vmFacts(f map[string]string) {
	h := vm.Inspect()
	f["vm.accel"] = h.Probe.Accel
	f["vm.accel.reason"] = h.Probe.Reason
	f["vm.qemu"] = orMissing(h.QEMU)
	f["vm.kernel"] = orMissing(h.Kernel)
	f["vm.virtiofsd"] = orMissing(h.Virtiofsd)
	if h.Problem != "" {
		f["vm.unavailable"] = h.Problem
	}
}

func orMissing(s string) string {
	if s == "" {
		return "missing"
	}
	return s
}

// VMFeatures are the annotations `bulwark features` adds for VM isolation:
// whether a VM can start here and with which accelerator.
func VMFeatures() map[string]string {
	h := vm.Inspect()
	m := map[string]string{oci.AnnotationIsolation: "namespace,vm,vm-strict", oci.AnnotationIsolation + ".accel": h.Probe.Accel}
	if h.Problem != "" {
		m[oci.AnnotationIsolation] = "namespace"
	}
	return m
}
