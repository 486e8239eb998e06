package policy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

func TestPrepareDeviceNodesGivesTheContainerRootItsOwnNode(t *testing.T) {
	s := Base()
	if err := Apply(s, WithUserNamespace(300000, 65536), WithDevice("/dev/null")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "nodes")
	if err := PrepareDeviceNodes(s, dir); err != nil {
		t.Fatal(err)
	}
	if len(s.Linux.Devices) != 0 {
		t.Errorf("linux.devices still %+v", s.Linux.Devices)
	}
	m := s.Mounts[len(s.Mounts)-1]
	if m.Destination != "/dev/null" || m.Type != "bind" {
		t.Fatalf("last mount %+v, want a bind at /dev/null", m)
	}
	var st unix.Stat_t
	if err := unix.Stat(m.Source, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Uid != 300000 || st.Gid != 300000 || st.Mode&0o777 != 0o600 {
		t.Errorf("node mode %#o rdev %d owner %d:%d, want char 1:3 0600 owned by 300000", st.Mode, st.Rdev, st.Uid, st.Gid)
	}
	rules := s.Linux.Resources.Devices
	if last := rules[len(rules)-1]; !last.Allow || *last.Major != 1 || *last.Minor != 3 || last.Access != "rw" {
		t.Errorf("devices cgroup rule %+v", last)
	}
}
