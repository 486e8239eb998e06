package cgroups

import (
	"maps"
	"testing"

	lib "github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
)

// The shortcut must give exactly the directories the library would, or a
// container's processes and its limits would end up in different places
// depending on which command computed them.
func TestFastV1PathsMatchLibrary(t *testing.T) {
	hostV1(t)
	for _, inner := range []string{"/bulwark/x1", "/a/b/c", "/docker/0123abc"} {
		fast := fastV1Paths(inner)
		if fast == nil {
			t.Skipf("skipping: this host's v1 layout is not the common one (the library computes the paths itself)")
		}
		m, err := fs.NewManager(&lib.Cgroup{Path: inner, Resources: &lib.Resources{}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := m.GetPaths(); !maps.Equal(fast, want) {
			t.Errorf("fastV1Paths(%q) = %v, library: %v", inner, fast, want)
		}
	}
	if p := fastV1Paths("relative/path"); p != nil {
		t.Errorf("relative path: got %v, want nil (relative paths depend on our own cgroup)", p)
	}
}

func TestParseV1Mounts(t *testing.T) {
	const tmpfs = "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
	line := func(mp, opts string) string {
		return "30 25 0:26 / " + mp + " rw,nosuid - cgroup cgroup rw," + opts + "\n"
	}
	tests := []struct {
		name, mountinfo string
		want            map[string]string
	}{
		{"common hybrid", tmpfs + line("/sys/fs/cgroup/devices", "devices") + line("/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct") +
			line("/sys/fs/cgroup/systemd", "xattr,name=systemd") +
			"40 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			map[string]string{"devices": "/sys/fs/cgroup/devices", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
				"cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "name=systemd": "/sys/fs/cgroup/systemd"}},
		{"no tmpfs at the root", line("/sys/fs/cgroup/devices", "devices"), nil},
		{"no devices hierarchy", tmpfs + line("/sys/fs/cgroup/memory", "memory"), nil},
		{"hierarchy elsewhere", tmpfs + line("/sys/fs/cgroup/devices", "devices") + line("/mnt/memory", "memory"), nil},
		{"mounted twice", tmpfs + line("/sys/fs/cgroup/devices", "devices") + line("/sys/fs/cgroup/d2", "devices"), nil},
		{"escaped mount point", tmpfs + line(`/sys/fs/cgroup/dev\040ices`, "devices"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseV1Mounts(tt.mountinfo); !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
