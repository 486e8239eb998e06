package oci

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestIsPodSandboxKnowsBothCRIs: the sandbox of containerd's CRI and of
// CRI-O is recognised, a pod's workload container and a plain bundle are
// not (they get the VM bulwark-vm asks for).
func TestIsPodSandboxKnowsBothCRIs(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want bool
	}{
		{"containerd sandbox", map[string]string{"io.kubernetes.cri.container-type": "sandbox"}, true},
		{"containerd container", map[string]string{"io.kubernetes.cri.container-type": "container"}, false},
		{"cri-o sandbox", map[string]string{"io.kubernetes.cri-o.ContainerType": "sandbox"}, true},
		{"cri-o container", map[string]string{"io.kubernetes.cri-o.ContainerType": "container"}, false},
		{"no annotations", nil, false},
		{"other value", map[string]string{"io.kubernetes.cri.container-type": "Sandbox"}, false},
	}
	for _, tc := range tests {
		if got := IsPodSandbox(&specs.Spec{Annotations: tc.ann}); got != tc.want {
			t.Errorf("%s: IsPodSandbox = %v, want %v", tc.name, got, tc.want)
		}
	}
}
