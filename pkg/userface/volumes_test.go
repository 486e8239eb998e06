package userface

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestVolumeMaps(t *testing.T) {
	rg := specs.LinuxIDMapping{ContainerID: 0, HostID: 200000, Size: 65536}
	id := func(c, h, n uint32) specs.LinuxIDMapping {
		return specs.LinuxIDMapping{ContainerID: c, HostID: h, Size: n}
	}
	tests := []struct {
		name    string
		owner   uint32
		im      *specs.LinuxIDMapping
		want    []specs.LinuxIDMapping
		wantErr bool
	}{
		{name: "owner is root", owner: 4242, want: []specs.LinuxIDMapping{id(4242, 200000, 1), id(200001, 200001, 65535)}},
		{name: "host root is never shifted", owner: 0, want: nil},
		{name: "owner already the range's", owner: 200005, want: nil},
		{name: "explicit in the middle", im: &specs.LinuxIDMapping{ContainerID: 101, HostID: 4242, Size: 2},
			want: []specs.LinuxIDMapping{id(4242, 200101, 2), id(200000, 200000, 101), id(200103, 200103, 65433)}},
		{name: "explicit from root", im: &specs.LinuxIDMapping{ContainerID: 0, HostID: 4242, Size: 1},
			want: []specs.LinuxIDMapping{id(4242, 200000, 1), id(200001, 200001, 65535)}},
		{name: "explicit past the range", im: &specs.LinuxIDMapping{ContainerID: 65536, HostID: 4242, Size: 1}, wantErr: true},
		{name: "explicit into the pool", im: &specs.LinuxIDMapping{ContainerID: 0, HostID: 99999, Size: 2}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []specs.LinuxIDMapping
			var err error
			if tc.im != nil {
				got, err = explicitMap(*tc.im, rg)
			} else if m, mapped := volumeMap(tc.owner, rg); mapped {
				got = m
			}
			if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
