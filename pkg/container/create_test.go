package container

import (
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/rootfs"
)

func i64(v int64) *int64 { return &v }

func TestResourcesWithDevices(t *testing.T) {
	denyAll := specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	defaults := rootfs.DefaultDeviceRules()
	fuse := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"}
	limit := int64(100)
	for _, tc := range []struct {
		name string
		spec *specs.Spec
		// want is the device rules after deny-all and before the defaults.
		want []specs.LinuxDeviceCgroup
		pids *specs.LinuxPids
	}{
		{name: "no linux section: deny all, then the defaults", spec: &specs.Spec{}},
		{name: "the config's own rules keep their order, before the defaults",
			spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Type: "c", Major: i64(1), Access: "w"}}}}},
			want: []specs.LinuxDeviceCgroup{{Allow: false, Type: "c", Major: i64(1), Access: "w"}}},
		{name: "a linux.devices entry is allowed",
			spec: &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}}},
			want: []specs.LinuxDeviceCgroup{fuse}},
		{name: "the config's rules come after linux.devices, so a deny there wins",
			spec: &specs.Spec{Linux: &specs.Linux{
				Devices:   []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
				Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"}}}}},
			want: []specs.LinuxDeviceCgroup{fuse, {Allow: false, Type: "c", Major: i64(10), Minor: i64(229), Access: "rwm"}}},
		{name: "a FIFO is no device for the cgroup",
			spec: &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{{Path: "/dev/p", Type: "p"}}}}},
		{name: "other resources pass through",
			spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}}},
			pids: &specs.LinuxPids{Limit: &limit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before *specs.LinuxResources
			if tc.spec.Linux != nil && tc.spec.Linux.Resources != nil {
				c := *tc.spec.Linux.Resources
				before = &c
			}
			got := resourcesWithDevices(tc.spec)
			want := append([]specs.LinuxDeviceCgroup{denyAll}, tc.want...)
			want = append(want, defaults...)
			if !reflect.DeepEqual(got.Devices, want) {
				t.Fatalf("devices:\n%+v\nwant:\n%+v", got.Devices, want)
			}
			if !reflect.DeepEqual(got.Pids, tc.pids) {
				t.Fatalf("pids: %+v, want %+v", got.Pids, tc.pids)
			}
			// The config itself is left alone: state.json records it as given.
			if before != nil && !reflect.DeepEqual(*tc.spec.Linux.Resources, *before) {
				t.Fatalf("resourcesWithDevices changed the config's resources to %+v", tc.spec.Linux.Resources)
			}
		})
	}
}

func TestAbsBindSources(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   specs.Mount
		want string
	}{
		{"a relative bind by type is taken from the bundle", specs.Mount{Type: "bind", Source: "data"}, "/b/data"},
		{"a relative bind by option", specs.Mount{Type: "none", Source: "./data", Options: []string{"ro", "bind"}}, "/b/data"},
		{"a relative rbind by option", specs.Mount{Source: "data/x", Options: []string{"rbind"}}, "/b/data/x"},
		{"an absolute bind is kept", specs.Mount{Type: "bind", Source: "/srv/data"}, "/srv/data"},
		{"a relative source of another type is no path", specs.Mount{Type: "tmpfs", Source: "tmpfs"}, "tmpfs"},
		{"an empty source stays empty", specs.Mount{Type: "bind"}, ""},
		{"a relative source that climbs out is resolved, not refused", specs.Mount{Type: "bind", Source: "../up"}, "/up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Mounts: []specs.Mount{tc.in}}
			absBindSources(s, "/b")
			if got := s.Mounts[0].Source; got != tc.want {
				t.Fatalf("source %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAbsDestinations(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"absolute", "/data", "/data"},
		{"relative is anchored at the container's root", "data", "/data"},
		{"empty stays empty for validation to name", "", ""},
		{"the host path of the rootfs is stripped, as runc does", "/b/rootfs/mnt/x", "/mnt/x"},
		{"the rootfs itself is the container's root", "/b/rootfs/", "/"},
		{"a host rootfs path is cleaned before it is stripped", "/b/rootfs//mnt/../final", "/final"},
		{"a sibling of the rootfs is no path under it", "/b/rootfs2/mnt", "/b/rootfs2/mnt"},
		{"a path that climbs out of the rootfs lexically is kept as given", "/b/rootfs/../etc", "/b/rootfs/../etc"},
		{"a relative destination is anchored at / first, as in runc", "b/rootfs/mnt", "/mnt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Mounts: []specs.Mount{{Destination: tc.in}}}
			absDestinations(s, "/b/rootfs")
			if got := s.Mounts[0].Destination; got != tc.want {
				t.Fatalf("destination %q, want %q", got, tc.want)
			}
		})
	}
}
