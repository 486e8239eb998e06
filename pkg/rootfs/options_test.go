package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		flags int
		clear int
		prop  []int
		attr  *unix.MountAttr
		data  string
		idmap bool
		rid   bool
	}{
		{name: "empty"},
		{name: "ro bind", in: []string{"bind", "ro", "nosuid"}, flags: unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID},
		{name: "later rw wins", in: []string{"ro", "rw"}, clear: unix.MS_RDONLY},
		{name: "later ro wins", in: []string{"rw", "ro"}, flags: unix.MS_RDONLY},
		{name: "rbind", in: []string{"rbind"}, flags: unix.MS_BIND | unix.MS_REC},
		{name: "data kept in order", in: []string{"nosuid", "size=64k", "mode=1777"}, flags: unix.MS_NOSUID, data: "size=64k,mode=1777"},
		{name: "propagation in order", in: []string{"rslave", "shared"}, prop: []int{unix.MS_SLAVE | unix.MS_REC, unix.MS_SHARED}},
		{name: "recursive attrs", in: []string{"rro", "rnosuid"}, attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID}},
		{name: "rrw after rro", in: []string{"rro", "rrw"}, attr: &unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}},
		{name: "atime replaces atime", in: []string{"rnoatime", "rstrictatime"}, attr: &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_STRICTATIME, Attr_clr: unix.MOUNT_ATTR__ATIME}},
		{name: "idmap", in: []string{"bind", "idmap"}, flags: unix.MS_BIND, idmap: true},
		{name: "ridmap", in: []string{"rbind", "ridmap"}, flags: unix.MS_BIND | unix.MS_REC, rid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMountOptions(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.flags != tc.flags || got.clear != tc.clear {
				t.Errorf("flags %#x clear %#x, want %#x %#x", got.flags, got.clear, tc.flags, tc.clear)
			}
			if !reflect.DeepEqual(got.propagation, tc.prop) {
				t.Errorf("propagation %v, want %v", got.propagation, tc.prop)
			}
			if !reflect.DeepEqual(got.recAttr, tc.attr) {
				t.Errorf("recAttr %+v, want %+v", got.recAttr, tc.attr)
			}
			if got.dataString() != tc.data {
				t.Errorf("data %q, want %q", got.dataString(), tc.data)
			}
			if got.idmap != tc.idmap || got.ridmap != tc.rid {
				t.Errorf("idmap %v ridmap %v, want %v %v", got.idmap, got.ridmap, tc.idmap, tc.rid)
			}
		})
	}
	if _, err := parseMountOptions([]string{"ro", ""}); err == nil {
		t.Error("an empty option was accepted")
	}
}

func TestDefaultDevicesAndRules(t *testing.T) {
	want := map[string][2]int64{
		"/dev/null": {1, 3}, "/dev/zero": {1, 5}, "/dev/full": {1, 7},
		"/dev/random": {1, 8}, "/dev/urandom": {1, 9}, "/dev/tty": {5, 0},
	}
	devs := DefaultDevices()
	if len(devs) != len(want) {
		t.Fatalf("got %d default devices, want %d", len(devs), len(want))
	}
	for _, d := range devs {
		mm, ok := want[d.Path]
		if !ok || d.Major != mm[0] || d.Minor != mm[1] || d.Type != "c" || d.FileMode == nil || d.FileMode.Perm() != 0o666 {
			t.Errorf("unexpected default device %+v", d)
		}
	}
	rules := DefaultDeviceRules()
	allowed := func(major, minor int64) bool {
		for _, r := range rules {
			if r.Allow && r.Type == "c" && r.Access == "rwm" && r.Major != nil && *r.Major == major &&
				(r.Minor == nil || *r.Minor == minor) {
				return true
			}
		}
		return false
	}
	for p, mm := range want {
		if !allowed(mm[0], mm[1]) {
			t.Errorf("no cgroup rule for %s", p)
		}
	}
	for _, mm := range [][2]int64{{5, 2}, {136, 0}, {136, 7}} {
		if !allowed(mm[0], mm[1]) {
			t.Errorf("no cgroup rule for c %d:%d", mm[0], mm[1])
		}
	}
	if allowed(10, 229) || allowed(1, 1) {
		t.Error("rules allow devices beyond the default set")
	}
	for _, r := range rules {
		if !r.Allow || r.Major == nil {
			t.Errorf("rule %+v is not a specific allow rule", r)
		}
	}
}
