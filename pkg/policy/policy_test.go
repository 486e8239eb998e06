package policy

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

func TestProfilesKeepTheFloorAndChangeOnlyTheirScenario(t *testing.T) {
	tests := []struct {
		name     string
		devices  []string
		caps     []string
		uid      uint32
		readonly bool
		check    func(t *testing.T, s *specs.Spec)
	}{
		{name: "default", caps: []string{}, readonly: true},
		{name: "webapp", caps: []string{"CAP_NET_BIND_SERVICE"}, uid: AppUID, readonly: true},
		{name: "database", caps: []string{"CAP_NET_BIND_SERVICE", "CAP_IPC_LOCK"}, uid: AppUID, readonly: true,
			check: func(t *testing.T, s *specs.Spec) {
				for _, r := range s.Process.Rlimits {
					if r.Type == "RLIMIT_MEMLOCK" && r.Hard <= DefaultMemlock {
						t.Errorf("memlock %d is not above the floor's %d", r.Hard, DefaultMemlock)
					}
				}
			}},
		{name: "dev", readonly: false,
			caps: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
				"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}},
		{name: "netadmin", caps: []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}, readonly: true},
		{name: "rawdisk", devices: []string{"/dev/null"}, caps: []string{}, readonly: true,
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Linux.Devices) != 1 || s.Linux.Devices[0].Path != "/dev/null" {
					t.Errorf("devices %+v, want /dev/null only", s.Linux.Devices)
				}
			}},
		{name: "vm", caps: []string{}, readonly: true,
			check: func(t *testing.T, s *specs.Spec) {
				if got := s.Annotations[oci.AnnotationIsolation]; got != oci.IsolationVM {
					t.Errorf("annotation %s = %q, want %q", oci.AnnotationIsolation, got, oci.IsolationVM)
				}
			}},
		{name: "strict", caps: []string{}, readonly: true,
			check: func(t *testing.T, s *specs.Spec) {
				def, _ := Spec("default")
				if len(s.Linux.Seccomp.Syscalls) == 0 || slices.EqualFunc(s.Linux.Seccomp.Syscalls, def.Linux.Seccomp.Syscalls,
					func(a, b specs.LinuxSyscall) bool { return slices.Equal(a.Names, b.Names) && a.Action == b.Action }) {
					t.Error("strict uses the default seccomp profile")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Spec(tc.name, tc.devices...)
			if err != nil {
				t.Fatal(err)
			}
			bundle := t.TempDir()
			if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := oci.Validate(s, bundle, seccomp.Validate); err != nil {
				t.Fatalf("profile spec does not validate: %v", err)
			}
			l := s.Linux
			if !oci.HasNamespace(s, specs.UserNamespace) || len(l.UIDMappings) != 1 || l.UIDMappings[0].HostID == 0 || l.UIDMappings[0].ContainerID != 0 {
				t.Errorf("user namespace maps %+v, want container 0 to an unprivileged host id", l.UIDMappings)
			}
			if !oci.HasNamespace(s, specs.NetworkNamespace) {
				t.Error("no network namespace of its own")
			}
			if got := l.Sysctl[UnprivilegedPortStart]; got != "0" {
				t.Errorf("%s = %q in the container's own network namespace, want 0", UnprivilegedPortStart, got)
			}
			c := s.Process.Capabilities
			for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted, "inheritable": c.Inheritable, "ambient": c.Ambient} {
				got, want := slices.Sorted(slices.Values(set)), slices.Sorted(slices.Values(tc.caps))
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			if !s.Process.NoNewPrivileges || l.Seccomp == nil {
				t.Error("no_new_privs or seccomp missing")
			}
			if s.Root.Readonly != tc.readonly || s.Process.User.UID != tc.uid {
				t.Errorf("readonly %v uid %d, want %v %d", s.Root.Readonly, s.Process.User.UID, tc.readonly, tc.uid)
			}
			if *l.Resources.Pids.Limit != DefaultPidsLimit || *l.Resources.Memory.Limit != DefaultMemoryLimit {
				t.Errorf("pids %d memory %d", *l.Resources.Pids.Limit, *l.Resources.Memory.Limit)
			}
			for _, p := range []string{"/proc/kcore", "/proc/kallsyms", "/proc/timer_list", "/sys/firmware", "/sys/devices/virtual/powercap"} {
				if !slices.Contains(l.MaskedPaths, p) {
					t.Errorf("%s not masked", p)
				}
			}
			if got := s.Annotations[oci.AnnotationRootfsOptions]; got != "idmap,nosuid,nodev" {
				t.Errorf("rootfs options %q", got)
			}
			for _, m := range s.Mounts {
				if !slices.Contains(m.Options, "nosuid") {
					t.Errorf("mount %s lacks nosuid", m.Destination)
				}
				if d := m.Destination; d != "/dev" && d != "/dev/pts" && !slices.Contains(m.Options, "nodev") {
					t.Errorf("mount %s lacks nodev", d)
				}
			}
			// Only dev, whose threat is mistakes, may run what it wrote.
			for _, m := range s.Mounts {
				if m.Destination == "/tmp" && slices.Contains(m.Options, "noexec") == (tc.name == "dev") {
					t.Errorf("/tmp options %v: want noexec in every profile but dev", m.Options)
				}
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestBadInputIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts []Option
		is   error
	}{
		{"unknown capability", []Option{WithCapabilities("CAP_FLY")}, ErrUnknownCapability},
		{"device that is a file", []Option{WithDevice(file)}, ErrNotDevice},
		{"device that does not exist", []Option{WithDevice("/dev/bulwark-nonexistent")}, os.ErrNotExist},
		{"NET_ADMIN on host network", []Option{WithCapabilities("NET_ADMIN"), WithHostNetwork()}, ErrConflict},
		{"NET_RAW on host network, either order", []Option{WithHostNetwork(), WithCapabilities("net_raw")}, ErrConflict},
		{"tmpfs over root", []Option{WithTmpfs("/", 1<<20)}, nil},
		{"unbounded tmpfs", []Option{WithTmpfs("/tmp", 0)}, nil},
		{"volume source missing", []Option{WithMount("/nonexistent/bulwark", "/data", true)}, os.ErrNotExist},
		{"user namespace onto host root", []Option{WithUserNamespace(0, 65536)}, nil},
		{"joined user namespace mapping host root", []Option{WithJoinedUserNamespace("/proc/1/ns/user", []specs.LinuxIDMapping{{HostID: 0, Size: 1}}, []specs.LinuxIDMapping{{HostID: 1000, Size: 1}})}, nil},
		{"joined user namespace without maps", []Option{WithJoinedUserNamespace("/proc/1/ns/user", nil, nil)}, nil},
		{"relative cwd", []Option{WithCwd("tmp")}, nil},
		{"env without =", []Option{WithEnv("FOO")}, nil},
		{"zero pids", []Option{WithPidsLimit(0)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Apply(Base(), tc.opts...)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	if _, err := Profile("bogus"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := Profile("rawdisk"); err == nil {
		t.Error("rawdisk without a device accepted")
	}
}

func TestCapabilityEditing(t *testing.T) {
	s := Base()
	if err := Apply(s, WithNoCapabilities(), WithCapabilities("kill", "CAP_CHOWN", "KILL"), WithoutCapabilities("chown")); err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Capabilities.Ambient; !slices.Equal(got, []string{"CAP_KILL"}) {
		t.Errorf("ambient %v, want [CAP_KILL] once", got)
	}
	if err := Apply(s, WithoutCapabilities("ALL")); err != nil || len(s.Process.Capabilities.Bounding) != 0 {
		t.Errorf("drop ALL: %v %v", err, s.Process.Capabilities.Bounding)
	}
}

func TestDeviceNodesAreOwnedByTheMappedRootAndBoundOverTheDevices(t *testing.T) {
	s := Base()
	if err := Apply(s, WithUserNamespace(300000, 65536), WithDevice("/dev/null")); err != nil {
		t.Fatal(err)
	}
	nodes, err := DeviceNodes(s)
	if err != nil {
		t.Fatal(err)
	}
	want := DeviceNode{Path: "/dev/null", Mode: unix.S_IFCHR | 0o600, Major: 1, Minor: 3, UID: 300000, GID: 300000}
	if len(nodes) != 1 || nodes[0] != want {
		t.Fatalf("nodes %+v, want [%+v]", nodes, want)
	}
	if err := Apply(s, WithDeviceNodes([]string{"/dev/bulwark/x/0"})); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("linux.devices still %+v", s.Linux.Devices)
	}
	m := s.Mounts[len(s.Mounts)-1]
	if m.Destination != "/dev/null" || m.Type != "bind" || m.Source != "/dev/bulwark/x/0" {
		t.Fatalf("last mount %+v, want a bind of the node at /dev/null", m)
	}
	rules := s.Linux.Resources.Devices
	if last := rules[len(rules)-1]; !last.Allow || *last.Major != 1 || *last.Minor != 3 || last.Access != "rw" {
		t.Errorf("devices cgroup rule %+v", last)
	}
}

func TestDeviceNodesNeedAUserNamespaceAndAMappedOwner(t *testing.T) {
	noUserNS := Base()
	if err := Apply(noUserNS, WithDevice("/dev/null")); err != nil {
		t.Fatal(err)
	}
	oci.RemoveNamespace(noUserNS, specs.UserNamespace)
	unmapped := Base()
	if err := Apply(unmapped, WithUserNamespace(300000, 65536), WithDevice("/dev/null")); err != nil {
		t.Fatal(err)
	}
	big := uint32(70000)
	unmapped.Linux.Devices[0].UID = &big
	tests := []struct {
		name    string
		s       *specs.Spec
		nodes   int
		wantErr string
	}{
		{name: "no user namespace", s: noUserNS},
		{name: "owner outside the map", s: unmapped, wantErr: "owner 70000:0 is not mapped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := DeviceNodes(tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(nodes) != tc.nodes {
				t.Errorf("nodes %+v err %v, want %d nodes", nodes, err, tc.nodes)
			}
		})
	}
}

func TestEtcFilesAreTheContainersOwn(t *testing.T) {
	mounted := Base()
	if err := Apply(mounted, WithHostname("box")); err != nil {
		t.Fatal(err)
	}
	mounted.Mounts = append(mounted.Mounts, specs.Mount{Destination: "/etc/hosts/", Type: "bind", Source: "/x"})
	host := Base()
	if err := Apply(host, WithHostNetwork()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    *specs.Spec
		want map[string]EtcFile
	}{
		{name: "no network", s: Base(), want: map[string]EtcFile{
			"hostname":    {Name: "hostname", Content: "bulwark\n"},
			"hosts":       {Name: "hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbulwark\n"},
			"resolv.conf": {Name: "resolv.conf", Content: "# this container has no network but its loopback interface\n"},
		}},
		{name: "the user's mount wins", s: mounted, want: map[string]EtcFile{
			"hostname":    {Name: "hostname", Content: "box\n"},
			"resolv.conf": {Name: "resolv.conf", Content: "# this container has no network but its loopback interface\n"},
		}},
		{name: "host network copies resolv.conf", s: host, want: map[string]EtcFile{
			"hostname":    {Name: "hostname", Content: "bulwark\n"},
			"hosts":       {Name: "hosts", Content: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tbulwark\n"},
			"resolv.conf": {Name: "resolv.conf", CopyOf: "/etc/resolv.conf"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]EtcFile{}
			for _, f := range EtcFiles(tc.s) {
				got[f.Name] = f
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestHostNetworkNeverSetsANetworkSysctl: a net.* sysctl with the host's
// network namespace would change the host.
func TestHostNetworkNeverSetsANetworkSysctl(t *testing.T) {
	for _, name := range ProfileNames() {
		if name == "gpu" || name == "rawdisk" || name == "netadmin" {
			continue
		}
		opts, err := Profile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := Base()
		if err := Apply(s, append(opts, WithHostNetwork())...); err != nil {
			t.Fatal(err)
		}
		if oci.HasNamespace(s, specs.NetworkNamespace) {
			t.Errorf("%s --net host: still a network namespace", name)
		}
		for k := range s.Linux.Sysctl {
			if strings.HasPrefix(k, "net.") {
				t.Errorf("%s --net host: sysctl %s would be the host's", name, k)
			}
		}
	}
}
