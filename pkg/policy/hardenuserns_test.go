package policy

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

func TestFloorUsernsBlocker(t *testing.T) {
	base := func() *specs.Spec {
		return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/run/netns/x"}, {Type: specs.IPCNamespace}, {Type: specs.MountNamespace}}}}
	}
	noHost := func(specs.LinuxNamespaceType) bool { return false }
	for _, tc := range []struct {
		name   string
		mutate func(*specs.Spec)
		cfg    HardenConfig
		hostNS func(specs.LinuxNamespaceType) bool
		want   string // substring; "" for no blocker
	}{
		{name: "engine config with a netns path gets one", mutate: func(*specs.Spec) {}},
		{name: "policy off", cfg: HardenConfig{Userns: UsernsOff}, want: `"userns": "off"`},
		{name: "own user namespace", mutate: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, want: "its own user namespace"},
		{name: "host network", hostNS: func(t specs.LinuxNamespaceType) bool { return t == specs.NetworkNamespace }, want: "host's network namespace"},
		{name: "host pid", hostNS: func(t specs.LinuxNamespaceType) bool { return t == specs.PIDNamespace }, want: "host's pid namespace"},
		{name: "annotated host-users", mutate: func(s *specs.Spec) {
			s.Annotations = map[string]string{oci.AnnotationAllow: "NET_RAW, host-users"}
		}, want: "host-users"},
		{name: "policy allow host-users", cfg: HardenConfig{Allow: []string{"host-users"}}, want: "host-users"},
		{name: "uid above the range", mutate: func(s *specs.Spec) { s.Process.User.UID = 70000 }, want: "id 70000"},
		{name: "additional gid above the range", mutate: func(s *specs.Spec) { s.Process.User.AdditionalGids = []uint32{1, 65536} }, want: "id 65536"},
		{name: "device filesystem", mutate: func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "/data", Type: "ext4", Source: "/dev/sdb1"}}
		}, want: "ext4 filesystem"},
		{name: "binds and kernel filesystems are fine", mutate: func(s *specs.Spec) {
			s.Mounts = []specs.Mount{{Destination: "/proc", Type: "proc"}, {Destination: "/v", Type: "none", Source: "/srv", Options: []string{"rbind"}},
				{Destination: "/x", Type: "ext4", Source: "/srv/x", Options: []string{"bind"}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base()
			if tc.mutate != nil {
				tc.mutate(s)
			}
			h := tc.hostNS
			if h == nil {
				h = noHost
			}
			got := FloorUsernsBlocker(s, tc.cfg, h)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("FloorUsernsBlocker = %q, want %q", got, tc.want)
			}
		})
	}
}
