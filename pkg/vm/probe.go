package vm

import (
	"errors"
	"fmt"
)

// ErrNoKVM: the host has no KVM that runs guests at hardware speed.
var ErrNoKVM = errors.New("no real hardware virtualisation (KVM)")

// ProbeResult says how guests run on this host.
type ProbeResult struct {
	Accel  string // "kvm" or "tcg"
	Reason string // why, for the warning, check and features
}

// Probe decides between KVM and TCG.
func Probe() ProbeResult {
	return ProbeResult{Accel: "tcg", Reason: "not probed yet"}
}

// TCGWarning is the loud line a run under TCG prints.
func TCGWarning(p ProbeResult) string {
	return fmt.Sprintf("WARNING: no real KVM (%s): the VM runs under QEMU's TCG emulator, which is slow and NOT a security boundary of KVM's strength; annotate %s to refuse instead", p.Reason, "run.bulwark.isolation=vm-strict")
}
