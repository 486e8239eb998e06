package floorns

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestJoinedUsernsBlocker(t *testing.T) {
	floor := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	for _, tc := range []struct {
		name     string
		uid, gid []specs.LinuxIDMapping
		user     specs.User
		want     string // substring of the reason; "" for none
	}{
		{"the floor's maps, root", floor, floor, specs.User{}, ""},
		{"the floor's maps, a mapped user", floor, floor, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{65535}}, ""},
		{"a uid above the maps", floor, floor, specs.User{UID: 65536}, "uid 65536"},
		{"an additional gid above the maps", floor, floor, specs.User{AdditionalGids: []uint32{70000}}, "gid 70000"},
		{"maps reaching host root", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 1}}, floor, specs.User{}, "host id 0"},
		{"gid maps reaching host root", floor, []specs.LinuxIDMapping{{ContainerID: 1, HostID: 0, Size: 1}, {ContainerID: 0, HostID: 5, Size: 1}}, specs.User{}, "host id 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &owner{uid: tc.uid, gid: tc.gid}
			got := o.blocker(&specs.Spec{Process: &specs.Process{User: tc.user}})
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("blocker = %q, want one containing %q", got, tc.want)
			}
		})
	}
}

func TestMappedSize(t *testing.T) {
	for _, tc := range []struct {
		ms   []specs.LinuxIDMapping
		want uint64
	}{
		{nil, 0},
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}, 65536},
		{[]specs.LinuxIDMapping{{ContainerID: 1, HostID: 100000, Size: 10}, {ContainerID: 0, HostID: 5, Size: 1}}, 11},
		{[]specs.LinuxIDMapping{{ContainerID: 0, HostID: 5, Size: 1}, {ContainerID: 2, HostID: 100000, Size: 10}}, 1},
		{[]specs.LinuxIDMapping{{ContainerID: 1, HostID: 100000, Size: 10}}, 0},
	} {
		if got := mappedSize(tc.ms); got != tc.want {
			t.Errorf("mappedSize(%v) = %d, want %d", tc.ms, got, tc.want)
		}
	}
}
