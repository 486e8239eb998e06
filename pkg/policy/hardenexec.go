package policy

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// HardenExec raises a process an engine execs into a container (its
// process.json) to what the floor left the container: no capability
// outside the container's bounding set, and no_new_privs where the
// container has it.
//
// Threat: Harden raises the config a container is created from, but an
// engine builds each exec's process from its own copy of that config
// (containerd's CRI, Docker, Podman), with the capabilities the floor
// dropped. Without this, `kubectl exec` or `docker exec` into a hardened
// container gets NET_RAW back, and the exec'd process is not the
// container's init's child, so the init's bounding set does not limit it.
// A process exec'd with more than the container (`docker exec
// --privileged`) is therefore lowered, not refused: the container's
// own opt-outs (run.bulwark.allow) already widened its bounding set.
func HardenExec(container *specs.Spec, p *specs.Process) []Decision {
	if p == nil {
		return nil
	}
	var ds []Decision
	allowed := map[string]bool{}
	if container != nil && container.Process != nil && container.Process.Capabilities != nil {
		for _, c := range container.Process.Capabilities.Bounding {
			allowed[oci.CapabilityName(c)] = true
		}
	}
	if pc := p.Capabilities; pc != nil {
		dropped := map[string][]string{}
		var order []string
		for _, set := range []struct {
			name string
			caps *[]string
		}{{"bounding", &pc.Bounding}, {"effective", &pc.Effective}, {"permitted", &pc.Permitted},
			{"inheritable", &pc.Inheritable}, {"ambient", &pc.Ambient}} {
			var kept []string
			for _, c := range *set.caps {
				if allowed[oci.CapabilityName(c)] {
					kept = append(kept, c)
					continue
				}
				if dropped[c] == nil {
					order = append(order, c)
				}
				dropped[c] = append(dropped[c], set.name)
			}
			*set.caps = kept
		}
		for _, c := range order {
			ds = append(ds, Decision{Field: "process.capabilities",
				Action: fmt.Sprintf("dropped %s from the exec'd process's %s", c, strings.Join(dropped[c], ", ")),
				Reason: "not in the container's bounding set: a process exec'd into a hardened container gets no more than the container"})
		}
	}
	if container != nil && container.Process != nil && container.Process.NoNewPrivileges && !p.NoNewPrivileges {
		p.NoNewPrivileges = true
		ds = append(ds, Decision{Field: "process.noNewPrivileges", Action: "set to true",
			Reason: "the container has it: a setuid binary run through exec would otherwise raise privileges the container cannot"})
	}
	return ds
}
