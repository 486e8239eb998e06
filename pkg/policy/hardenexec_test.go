package policy

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHardenExecLimitsTheProcessToTheContainer(t *testing.T) {
	caps := func(cs ...string) *specs.LinuxCapabilities {
		return &specs.LinuxCapabilities{Bounding: cs, Effective: cs, Permitted: cs}
	}
	tests := []struct {
		name      string
		container *specs.Process
		exec      specs.Process
		wantCaps  []string
		wantNNP   bool
		decisions int
	}{
		{
			name:      "a capability the floor dropped is dropped again",
			container: &specs.Process{Capabilities: caps("CAP_CHOWN", "CAP_KILL"), NoNewPrivileges: true},
			exec:      specs.Process{Capabilities: caps("CAP_CHOWN", "CAP_NET_RAW", "CAP_KILL"), NoNewPrivileges: true},
			wantCaps:  []string{"CAP_CHOWN", "CAP_KILL"}, wantNNP: true, decisions: 1,
		},
		{
			name:      "a privileged exec is lowered to the container",
			container: &specs.Process{Capabilities: caps("CAP_CHOWN")},
			exec:      specs.Process{Capabilities: caps("CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE")},
			wantCaps:  []string{"CAP_CHOWN"}, decisions: 2,
		},
		{
			name:      "no_new_privs follows the container",
			container: &specs.Process{Capabilities: caps("CAP_CHOWN"), NoNewPrivileges: true},
			exec:      specs.Process{Capabilities: caps("CAP_CHOWN")},
			wantCaps:  []string{"CAP_CHOWN"}, wantNNP: true, decisions: 1,
		},
		{
			name:      "a container without capabilities gives its execs none",
			container: &specs.Process{},
			exec:      specs.Process{Capabilities: caps("CAP_CHOWN")},
			wantCaps:  nil, decisions: 1,
		},
		{
			name:      "an exec within the container's set is left alone",
			container: &specs.Process{Capabilities: caps("CAP_CHOWN", "CAP_KILL")},
			exec:      specs.Process{Capabilities: caps("KILL")},
			wantCaps:  []string{"KILL"}, decisions: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.exec
			ds := HardenExec(&specs.Spec{Process: tc.container}, &p)
			for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted} {
				if !slices.Equal(set, tc.wantCaps) {
					t.Errorf("capabilities %v, want %v", set, tc.wantCaps)
				}
			}
			if p.NoNewPrivileges != tc.wantNNP {
				t.Errorf("noNewPrivileges %v, want %v", p.NoNewPrivileges, tc.wantNNP)
			}
			if len(ds) != tc.decisions {
				t.Errorf("decisions %v, want %d", ds, tc.decisions)
			}
		})
	}
}
