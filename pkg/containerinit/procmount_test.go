package containerinit

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

func TestProcMountReadOnlyWhereLandlockCannotKeepProcWritesAway(t *testing.T) {
	mntns := &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}}
	spec := func(ann map[string]string, rootRO bool, linux *specs.Linux) *specs.Spec {
		return &specs.Spec{Annotations: ann, Root: &specs.Root{Path: "rootfs", Readonly: rootRO}, Linux: linux}
	}
	enforce := map[string]string{oci.AnnotationLandlock: "enforce"}
	for _, tc := range []struct {
		name    string
		s       *specs.Spec
		abi     int
		want    bool
		wantErr bool
	}{
		{"writable rootfs under Landlock", spec(enforce, false, mntns), 7, true, false},
		{"read-only rootfs: Landlock refuses alone", spec(enforce, true, mntns), 7, false, false},
		{"read-only rootfs on a kernel without Landlock", spec(enforce, true, mntns), 0, true, false},
		{"Landlock required", spec(map[string]string{oci.AnnotationLandlock: "require"}, false, mntns), 7, true, false},
		{"opt-out landlock-proc rw", spec(map[string]string{oci.AnnotationLandlock: "enforce", oci.AnnotationLandlockProc: "rw"}, false, mntns), 7, false, false},
		{"landlock-proc ro said aloud", spec(map[string]string{oci.AnnotationLandlock: "enforce", oci.AnnotationLandlockProc: "ro"}, false, mntns), 7, true, false},
		{"no Landlock annotation (an engine's config without the floor)", spec(nil, false, mntns), 7, false, false},
		{"host mount namespace: the mount is the host's", spec(enforce, false, &specs.Linux{}), 7, false, false},
		{"no root in the config", &specs.Spec{Annotations: enforce, Linux: mntns}, 7, true, false},
		{"nil spec", nil, 7, false, false},
		{"bad landlock-proc value", spec(map[string]string{oci.AnnotationLandlock: "enforce", oci.AnnotationLandlockProc: "yes"}, false, mntns), 7, false, true},
		{"bad landlock mode", spec(map[string]string{oci.AnnotationLandlock: "sometimes"}, false, mntns), 7, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := procMountReadOnly(tc.s, func() int { return tc.abi })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, oci.ErrInvalidConfig) {
				t.Errorf("err = %v, want it to wrap oci.ErrInvalidConfig", err)
			}
			if got != tc.want {
				t.Errorf("procMountReadOnly = %v, want %v", got, tc.want)
			}
		})
	}
}
