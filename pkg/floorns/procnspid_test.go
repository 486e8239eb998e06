package floorns

import "testing"

func TestProcNSPid(t *testing.T) {
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/proc/123/ns/net", 123},
		{"/proc/1/ns/pid_for_children", 1},
		{"/proc/self/ns/net", -1},
		{"/proc/12a/ns/net", -1},
		{"/proc/+12/ns/net", -1},
		{"/proc/0/ns/net", -1},
		{"/proc/123/ns/", -1},
		{"/proc/123/ns/Net", -1},
		{"/run/netns/x", -1},
		{"/proc/123/ns/net/extra", -1},
	} {
		if got := procNSPid(tc.path); got != tc.want {
			t.Errorf("procNSPid(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}
