package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// testBundle returns a bundle directory with an empty rootfs and a valid
// spec (the `runc spec` template) that tests then break in one place.
func testBundle(t *testing.T) (string, *specs.Spec) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, Example()
}

func ptr[T any](v T) *T { return &v }

func withNS(s *specs.Spec, ns ...specs.LinuxNamespace) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, ns...)
}

func withoutNS(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var out []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			out = append(out, n)
		}
	}
	s.Linux.Namespaces = out
}

func TestValidate(t *testing.T) {
	userNS := func(s *specs.Spec) {
		withNS(s, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}
	idmapMount := specs.Mount{
		Destination: "/data", Source: "/tmp", Options: []string{"rbind", "idmap"},
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
	}
	tests := []struct {
		name   string
		mutate func(s *specs.Spec, bundle string)
		field  string // "" means valid
		msg    string
	}{
		{name: "runc template is valid", mutate: func(*specs.Spec, string) {}},
		{name: "old dev version", mutate: func(s *specs.Spec, _ string) { s.Version = "1.0.2-dev" }},
		{name: "newer minor accepted", mutate: func(s *specs.Spec, _ string) { s.Version = "1.9.0" }},
		{name: "no process", mutate: func(s *specs.Spec, _ string) { s.Process = nil }},
		{name: "no linux", mutate: func(s *specs.Spec, _ string) { s.Linux = nil; s.Hostname = "" }},
		{name: "absolute rootfs", mutate: func(s *specs.Spec, b string) { s.Root.Path = filepath.Join(b, "rootfs") }},

		{name: "ociVersion missing", mutate: func(s *specs.Spec, _ string) { s.Version = "" }, field: "ociVersion", msg: "missing"},
		{name: "ociVersion major 2", mutate: func(s *specs.Spec, _ string) { s.Version = "2.0.0" }, field: "ociVersion", msg: `version "2.0.0" is not supported`},
		{name: "ociVersion major 0", mutate: func(s *specs.Spec, _ string) { s.Version = "0.6.0" }, field: "ociVersion", msg: "not supported"},
		{name: "ociVersion not semver", mutate: func(s *specs.Spec, _ string) { s.Version = "1.0" }, field: "ociVersion", msg: "not a semantic version"},
		{name: "ociVersion leading zero", mutate: func(s *specs.Spec, _ string) { s.Version = "1.01.0" }, field: "ociVersion", msg: "not a semantic version"},
		{name: "ociVersion dangling dash", mutate: func(s *specs.Spec, _ string) { s.Version = "1.0.0-" }, field: "ociVersion", msg: "not a semantic version"},

		{name: "root missing", mutate: func(s *specs.Spec, _ string) { s.Root = nil }, field: "root", msg: "missing"},
		{name: "root.path empty", mutate: func(s *specs.Spec, _ string) { s.Root.Path = "" }, field: "root.path", msg: "empty"},
		{name: "root.path absent", mutate: func(s *specs.Spec, _ string) { s.Root.Path = "nope" }, field: "root.path", msg: `"nope" (resolved to `},
		{name: "root.path is a file", mutate: func(s *specs.Spec, b string) {
			os.WriteFile(filepath.Join(b, "file"), nil, 0o644)
			s.Root.Path = "file"
		}, field: "root.path", msg: "is not a directory"},

		{name: "args empty", mutate: func(s *specs.Spec, _ string) { s.Process.Args = nil }, field: "process.args", msg: "empty"},
		{name: "args NUL", mutate: func(s *specs.Spec, _ string) { s.Process.Args = []string{"sh", "-c\x00x"} }, field: "process.args[1]", msg: "NUL"},
		{name: "cwd empty", mutate: func(s *specs.Spec, _ string) { s.Process.Cwd = "" }, field: "process.cwd", msg: "missing"},
		{name: "cwd relative", mutate: func(s *specs.Spec, _ string) { s.Process.Cwd = "tmp" }, field: "process.cwd", msg: `"tmp" is not an absolute path`},
		{name: "env without =", mutate: func(s *specs.Spec, _ string) { s.Process.Env = append(s.Process.Env, "FOO") }, field: "process.env[2]", msg: `"FOO" has no '='`},
		{name: "env empty name", mutate: func(s *specs.Spec, _ string) { s.Process.Env = []string{"=x"} }, field: "process.env[0]", msg: "empty variable name"},
		{name: "unknown capability", mutate: func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FOO")
		}, field: "process.capabilities.bounding[3]", msg: `unknown capability "CAP_FOO"`},
		{name: "capability without prefix", mutate: func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Ambient = []string{"sys_admin"}
		}, field: "process.capabilities.ambient[0]", msg: `did you mean "CAP_SYS_ADMIN"`},
		{name: "all capability sets checked", mutate: func(s *specs.Spec, _ string) {
			s.Process.Capabilities.Inheritable = []string{"CAP_CHOWN", "CAP_NOPE"}
		}, field: "process.capabilities.inheritable[1]", msg: "unknown capability"},
		{name: "rlimit unknown", mutate: func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO"})
		}, field: "process.rlimits[1].type", msg: `unknown rlimit type "RLIMIT_FOO"`},
		{name: "rlimit duplicate", mutate: func(s *specs.Spec, _ string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1})
		}, field: "process.rlimits[1].type", msg: `duplicate rlimit "RLIMIT_NOFILE" (also process.rlimits[0])`},
		{name: "rlimit soft above hard", mutate: func(s *specs.Spec, _ string) { s.Process.Rlimits[0].Soft = 4096 }, field: "process.rlimits[0].soft", msg: "soft limit 4096 exceeds hard limit 1024"},
		{name: "oomScoreAdj range", mutate: func(s *specs.Spec, _ string) { s.Process.OOMScoreAdj = ptr(1001) }, field: "process.oomScoreAdj", msg: "-1000..1000"},
		{name: "apparmor", mutate: func(s *specs.Spec, _ string) { s.Process.ApparmorProfile = "docker-default" }, field: "process.apparmorProfile", msg: "not supported"},
		{name: "selinux", mutate: func(s *specs.Spec, _ string) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, field: "process.selinuxLabel", msg: "not supported"},
		{name: "scheduler nice", mutate: func(s *specs.Spec, _ string) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther, Nice: 20}
		}, field: "process.scheduler.nice", msg: "-20..19"},
		{name: "scheduler priority", mutate: func(s *specs.Spec, _ string) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Priority: 5}
		}, field: "process.scheduler.priority", msg: "only SCHED_FIFO and SCHED_RR"},
		{name: "scheduler policy", mutate: func(s *specs.Spec, _ string) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_X"} }, field: "process.scheduler.policy", msg: "unknown policy"},
		{name: "ioPriority class", mutate: func(s *specs.Spec, _ string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_X"}
		}, field: "process.ioPriority.class", msg: "unknown class"},
		{name: "ioPriority level", mutate: func(s *specs.Spec, _ string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}
		}, field: "process.ioPriority.priority", msg: "0..7"},

		{name: "hostname without uts", mutate: func(s *specs.Spec, _ string) { withoutNS(s, specs.UTSNamespace) }, field: "hostname", msg: `no "uts" entry`},
		{name: "domainname without uts", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.UTSNamespace)
			s.Hostname = ""
			s.Domainname = "example.org"
		}, field: "domainname", msg: `no "uts" entry`},
		{name: "hostname too long", mutate: func(s *specs.Spec, _ string) { s.Hostname = strings.Repeat("h", 65) }, field: "hostname", msg: "at most 64"},
		{name: "joined uts allows hostname", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.UTSNamespace)
			withNS(s, specs.LinuxNamespace{Type: specs.UTSNamespace, Path: "/proc/1/ns/uts"})
		}},

		{name: "mount destination empty", mutate: func(s *specs.Spec, _ string) { s.Mounts[2].Destination = "" }, field: "mounts[2].destination", msg: "empty"},
		{name: "mount relative destination is only deprecated", mutate: func(s *specs.Spec, _ string) { s.Mounts[0].Destination = "proc" }},
		{name: "mount source NUL", mutate: func(s *specs.Spec, _ string) { s.Mounts[1].Source = "tm\x00pfs" }, field: "mounts[1].source", msg: "NUL"},
		{name: "mount empty option", mutate: func(s *specs.Spec, _ string) { s.Mounts[1].Options = []string{"nosuid", ""} }, field: "mounts[1].options[1]", msg: "empty mount option"},
		{name: "mount option NUL", mutate: func(s *specs.Spec, _ string) { s.Mounts[1].Options = []string{"size=1\x00"} }, field: "mounts[1].options[0]", msg: "NUL"},
		{name: "bind without source", mutate: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Options: []string{"rbind"}})
		}, field: "mounts[7].source", msg: "needs the path to bind"},
		{name: "type missing", mutate: func(s *specs.Spec, _ string) { s.Mounts[0].Type = "" }, field: "mounts[0].type", msg: "give the filesystem type"},
		{name: "remount may omit type", mutate: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc", Options: []string{"remount", "ro"}})
		}},
		{name: "idmap bind valid", mutate: func(s *specs.Spec, _ string) { s.Mounts = append(s.Mounts, idmapMount) }},
		{name: "idmap not bind", mutate: func(s *specs.Spec, _ string) {
			m := idmapMount
			m.Options = []string{"idmap"}
			m.Type = "tmpfs"
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7].options", msg: "must be bind mounts"},
		{name: "mount mappings without bind", mutate: func(s *specs.Spec, _ string) {
			s.Mounts[1].UIDMappings = idmapMount.UIDMappings
		}, field: "mounts[1].options", msg: "must be bind mounts"},
		{name: "idmap without gidMappings", mutate: func(s *specs.Spec, _ string) {
			m := idmapMount
			m.GIDMappings = nil
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7].gidMappings", msg: "needs both"},
		{name: "idmap option without mappings or user namespace", mutate: func(s *specs.Spec, _ string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "/tmp", Options: []string{"bind", "ridmap"}})
		}, field: "mounts[7].uidMappings", msg: "no container mapping"},
		{name: "idmap option takes the user namespace's mapping", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Source: "/tmp", Options: []string{"bind", "ridmap"}})
		}},
		{name: "mappings without idmap option", mutate: func(s *specs.Spec, _ string) {
			m := idmapMount
			m.Options = []string{"rbind"}
			s.Mounts = append(s.Mounts, m)
		}},
		{name: "idmap with only uidMappings", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			m := idmapMount
			m.GIDMappings = nil
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7].gidMappings", msg: "needs both"},
		{name: "idmap mapping size 0", mutate: func(s *specs.Spec, _ string) {
			m := idmapMount
			m.UIDMappings = []specs.LinuxIDMapping{{HostID: 1000}}
			s.Mounts = append(s.Mounts, m)
		}, field: "mounts[7].uidMappings[0].size", msg: "greater than 0"},

		{name: "hook relative path", mutate: func(s *specs.Spec, _ string) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}, {Path: "hook.sh"}}}
		}, field: "hooks.createRuntime[1].path", msg: `"hook.sh" is not an absolute path`},
		{name: "hook empty path", mutate: func(s *specs.Spec, _ string) { s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{}}} }, field: "hooks.poststop[0].path", msg: "empty"},
		{name: "hook timeout", mutate: func(s *specs.Spec, _ string) {
			//lint:ignore SA1019 prestart is deprecated but engines and the conformance suite still use it
			s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/true", Timeout: ptr(0)}}}
		}, field: "hooks.prestart[0].timeout", msg: "greater than 0"},
		{name: "annotation empty key", mutate: func(s *specs.Spec, _ string) { s.Annotations = map[string]string{"": "x"} }, field: "annotations", msg: "empty key"},

		{name: "namespace unknown", mutate: func(s *specs.Spec, _ string) { s.Linux.Namespaces[2].Type = "foo" }, field: "linux.namespaces[2].type", msg: `unknown namespace type "foo"`},
		{name: "namespace duplicate", mutate: func(s *specs.Spec, _ string) {
			// The template has a 6th (cgroup) entry on cgroup v2 hosts only.
			s.Linux.Namespaces = append(s.Linux.Namespaces[:5:5], specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, field: "linux.namespaces[5].type", msg: `duplicate namespace "pid" (also linux.namespaces[0])`},
		{name: "namespace relative path", mutate: func(s *specs.Spec, _ string) { s.Linux.Namespaces[1].Path = "netns" }, field: "linux.namespaces[1].path", msg: "not an absolute path"},
		{name: "user namespace valid", mutate: func(s *specs.Spec, _ string) { userNS(s) }},
		{name: "user namespace without uidMappings", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			s.Linux.UIDMappings = nil
		}, field: "linux.uidMappings", msg: "new user namespace"},
		{name: "user namespace without gidMappings", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			s.Linux.GIDMappings = nil
		}, field: "linux.gidMappings", msg: "new user namespace"},
		{name: "joined user namespace needs no mappings", mutate: func(s *specs.Spec, _ string) {
			withNS(s, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/1/ns/user"})
		}},
		{name: "mappings without user namespace", mutate: func(s *specs.Spec, _ string) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, field: "linux.gidMappings", msg: `no "user" entry`},
		{name: "mapping size 0", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 70000, HostID: 1})
		}, field: "linux.uidMappings[1].size", msg: "greater than 0"},
		{name: "mapping overflow", mutate: func(s *specs.Spec, _ string) {
			userNS(s)
			s.Linux.GIDMappings[0].HostID = 0xffffffff
		}, field: "linux.gidMappings[0].size", msg: "runs past the last id"},

		{name: "timeOffsets without time ns", mutate: func(s *specs.Spec, _ string) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, field: "linux.timeOffsets", msg: `no "time" entry`},
		{name: "timeOffsets valid", mutate: func(s *specs.Spec, _ string) {
			withNS(s, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}, "boottime": {Nanosecs: 5}}
		}},
		{name: "timeOffsets with joined ns", mutate: func(s *specs.Spec, _ string) {
			withNS(s, specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/1/ns/time"})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, field: "linux.timeOffsets", msg: "new time namespace"},
		{name: "timeOffsets bad clock", mutate: func(s *specs.Spec, _ string) {
			withNS(s, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 10}}
		}, field: `linux.timeOffsets["realtime"]`, msg: "only the"},
		{name: "timeOffsets nanosecs", mutate: func(s *specs.Spec, _ string) {
			withNS(s, specs.LinuxNamespace{Type: specs.TimeNamespace})
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Nanosecs: 1e9}}
		}, field: `linux.timeOffsets["boottime"].nanosecs`, msg: "not below"},

		{name: "maskedPaths without mount ns", mutate: func(s *specs.Spec, _ string) { withoutNS(s, specs.MountNamespace) }, field: "linux.maskedPaths", msg: `no "mount" entry`},
		{name: "maskedPaths relative", mutate: func(s *specs.Spec, _ string) { s.Linux.MaskedPaths[3] = "proc/keys" }, field: "linux.maskedPaths[3]", msg: "not an absolute path"},
		{name: "readonlyPaths relative", mutate: func(s *specs.Spec, _ string) { s.Linux.ReadonlyPaths[0] = "proc/bus" }, field: "linux.readonlyPaths[0]", msg: "not an absolute path"},
		{name: "rootfsPropagation", mutate: func(s *specs.Spec, _ string) { s.Linux.RootfsPropagation = "rprivat" }, field: "linux.rootfsPropagation", msg: `unknown propagation "rprivat"`},

		{name: "sysctl net with netns", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "net/ipv4/conf/eth0.100/rp_filter": "1", "net.ipv4.conf.eth0/100.rp_filter": "1"}
		}},
		{name: "sysctl net without netns", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, field: `linux.sysctl["net.ipv4.ip_forward"]`, msg: `needs a "network" entry`},
		{name: "sysctl net in the host netns by path", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.NetworkNamespace)
			withNS(s, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"})
			s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "1024"}
		}, field: `linux.sysctl["net.core.somaxconn"]`, msg: "runtime's own"},
		{name: "sysctl ipc without ipc ns", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, field: `linux.sysctl["kernel.shmmax"]`, msg: `needs an "ipc" entry`},
		{name: "sysctl mqueue without ipc ns", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"fs.mqueue.msg_max": "1"}
		}, field: `linux.sysctl["fs.mqueue.msg_max"]`, msg: `needs an "ipc" entry`},
		{name: "sysctl ipc with ipc ns", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "10", "kernel.domainname": "x"}
		}},
		{name: "sysctl hostname conflicts", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"kernel.hostname": "x"}
		}, field: `linux.sysctl["kernel.hostname"]`, msg: `conflicts with the "hostname" field`},
		{name: "sysctl domainname without uts", mutate: func(s *specs.Spec, _ string) {
			withoutNS(s, specs.UTSNamespace)
			s.Hostname = ""
			s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
		}, field: `linux.sysctl["kernel.domainname"]`, msg: `needs a "uts" entry`},
		{name: "sysctl user without userns", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"user.max_user_namespaces": "0"}
		}, field: `linux.sysctl["user.max_user_namespaces"]`, msg: `needs a "user" entry`},
		{name: "sysctl not namespaced", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "0"}
		}, field: `linux.sysctl["vm.swappiness"]`, msg: "not namespaced"},
		{name: "sysctl path escape", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"net/../../sysrq-trigger": "c"}
		}, field: `linux.sysctl["net/../../sysrq-trigger"]`, msg: `".." component`},
		{name: "sysctl dotted escape", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Sysctl = map[string]string{"net.//.//.sysrq-trigger": "c"}
		}, field: `linux.sysctl["net.//.//.sysrq-trigger"]`, msg: `".." component`},

		{name: "device type", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/x", Type: "x", Major: 1, Minor: 3}}
		}, field: "linux.devices[0].type", msg: `unknown device type "x"`},
		{name: "device relative path", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "dev/null", Type: "c", Major: 1, Minor: 3}}
		}, field: "linux.devices[0].path", msg: "not an absolute path"},
		{name: "device without numbers", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/sda", Type: "b"}}
		}, field: "linux.devices[1]", msg: "major and minor are required"},
		{name: "fifo needs no numbers", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fifo", Type: "p"}}
		}},
		{name: "device fileMode with a foreign file type", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o60666))}}
		}, field: "linux.devices[0].fileMode", msg: "beyond the permission bits"},
		{name: "device fileMode with its own file type (podman)", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: ptr(os.FileMode(0o20666))}}
		}},
		{name: "device cgroup access", mutate: func(s *specs.Spec, _ string) { s.Linux.Resources.Devices[0].Access = "rwx" }, field: "linux.resources.devices[0].access", msg: "only contain r, w and m"},
		{name: "device cgroup type", mutate: func(s *specs.Spec, _ string) { s.Linux.Resources.Devices[0].Type = "p" }, field: "linux.resources.devices[0].type", msg: "unknown device type"},
		{name: "cgroupsPath escape", mutate: func(s *specs.Spec, _ string) { s.Linux.CgroupsPath = "/bulwark/../../evil" }, field: "linux.cgroupsPath", msg: `".." component`},
		{name: "systemd cgroupsPath", mutate: func(s *specs.Spec, _ string) { s.Linux.CgroupsPath = "system.slice:bulwark:abc" }},
		{name: "rdma", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Resources.Rdma = map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr(uint32(1))}}
		}, field: "linux.resources.rdma", msg: "not supported"},

		{name: "seccomp hook field error", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
		}, field: "linux.seccomp.syscalls[3].names", msg: `unknown syscall "fro"`},
		{name: "personality domain", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"}
		}, field: "linux.personality.domain", msg: `unknown domain "LINUX64"`},
		{name: "personality valid", mutate: func(s *specs.Spec, _ string) { s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32} }},
		{name: "personality flags", mutate: func(s *specs.Spec, _ string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"X"}}
		}, field: "linux.personality.flags", msg: "no personality flags"},
		{name: "intelRdt", mutate: func(s *specs.Spec, _ string) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} }, field: "linux.intelRdt", msg: "not supported"},
		{name: "memoryPolicy bind without nodes", mutate: func(s *specs.Spec, _ string) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind} }, field: "linux.memoryPolicy.nodes", msg: "needs at least one node"},
		{name: "memoryPolicy local with nodes", mutate: func(s *specs.Spec, _ string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolLocal, Nodes: "0"}
		}, field: "linux.memoryPolicy.nodes", msg: "mode requires 0 nodes but got"},
		{name: "memoryPolicy unknown mode", mutate: func(s *specs.Spec, _ string) { s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_X"} }, field: "linux.memoryPolicy.mode", msg: "invalid memory policy mode \"MPOL_X\""},
		{name: "memoryPolicy bad flag", mutate: func(s *specs.Spec, _ string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes, "MPOL_F_X"}}
		}, field: "linux.memoryPolicy.flags[1]", msg: "invalid memory policy flag"},
		{name: "memoryPolicy valid", mutate: func(s *specs.Spec, _ string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0-1,3"}
		}},
		{name: "memoryPolicy does not hide netDevices", mutate: func(s *specs.Spec, _ string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolLocal}
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, field: "linux.netDevices", msg: "not supported"},
		{name: "execCPUAffinity bad list", mutate: func(s *specs.Spec, _ string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "3-1"}
		}, field: "process.execCPUAffinity.final", msg: "runs backwards"},
		{name: "execCPUAffinity valid", mutate: func(s *specs.Spec, _ string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0-1", Final: "1"}
		}},
		{name: "netDevices", mutate: func(s *specs.Spec, _ string) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, field: "linux.netDevices", msg: "not supported"},
	}

	rejectFro := func(*specs.LinuxSeccomp) error {
		return &FieldError{Field: "linux.seccomp.syscalls[3].names", Msg: `unknown syscall "fro"`}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle, s := testBundle(t)
			tt.mutate(s, bundle)
			err := Validate(s, bundle, rejectFro)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v (%T), want *FieldError for %s", err, err, tt.field)
			}
			if fe.Field != tt.field {
				t.Fatalf("field = %q, want %q (error: %v)", fe.Field, tt.field, err)
			}
			if !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("msg = %q, want it to contain %q", fe.Msg, tt.msg)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
			if want := "config.json: " + tt.field + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Error() = %q, want prefix %q", err, want)
			}
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		fe   FieldError
		want string
	}{
		{FieldError{File: "config.json", Field: "linux.namespaces[2].type", Msg: `unknown namespace type "foo"`}, `config.json: linux.namespaces[2].type: unknown namespace type "foo"`},
		{FieldError{File: "config.json", Line: 3, Column: 7, Field: "process", Msg: "m"}, "config.json:3:7: process: m"},
		{FieldError{File: "config.json", Line: 3, Msg: "m"}, "config.json:3: m"},
		{FieldError{Field: "f", Err: os.ErrNotExist}, "f: file does not exist"},
		{FieldError{}, "invalid value"},
	}
	for _, tt := range tests {
		if got := tt.fe.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	fe := &FieldError{Err: os.ErrPermission}
	if !errors.Is(fe, os.ErrPermission) {
		t.Fatal("Unwrap does not expose Err")
	}
}

func TestValidateRootfsErrorWrapsCause(t *testing.T) {
	bundle, s := testBundle(t)
	s.Root.Path = "missing"
	err := Validate(s, bundle, acceptSeccomp)
	if !errors.Is(err, os.ErrNotExist) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want both ErrInvalidConfig and ErrNotExist", err)
	}
	if want := filepath.Join(bundle, "missing"); !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %q, want the resolved path %s", err, want)
	}
}

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *specs.Spec)
		want   string
	}{
		{"relative mount destination", func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, `config.json: mounts[0].destination: "proc" is relative`},
		{"newer minor", func(s *specs.Spec) { s.Version = "1.9.0" }, `ociVersion "1.9.0" is newer than`},
		{"windows section", func(s *specs.Spec) { s.Windows = &specs.Windows{} }, `"windows" applies to another platform`},
		{"bind mount with tmpfs options", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Source: "/etc", Options: []string{"bind", "mode=755", "size=1k"}})
		}, `options: filesystem-specific options "mode=755,size=1k" on a bind mount are ignored`},
		{"ambient not inheritable", func(s *specs.Spec) {
			s.Process.Capabilities = &specs.LinuxCapabilities{Permitted: []string{"CAP_KILL"}, Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL", "CAP_CHOWN"}}
		}, `process.capabilities.ambient[1]: can't raise ambient capability CAP_CHOWN: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle, s := testBundle(t)
			tt.mutate(s)
			warns, err := validate(s, bundle, acceptSeccomp)
			if err != nil {
				t.Fatal(err)
			}
			if len(warns) != 1 || !strings.Contains(warns[0], tt.want) {
				t.Fatalf("warnings = %q, want one containing %q", warns, tt.want)
			}
		})
	}
}

func TestRootfsPath(t *testing.T) {
	tests := []struct {
		bundle, root, want string
	}{
		{"/b", "rootfs", "/b/rootfs"},
		{"/b", "/abs/root", "/abs/root"},
		{"/b", "../r", "/r"},
		{"/b/", "./x/", "/b/x"},
	}
	for _, tt := range tests {
		if got := RootfsPath(tt.bundle, &specs.Spec{Root: &specs.Root{Path: tt.root}}); got != tt.want {
			t.Errorf("RootfsPath(%q, %q) = %q, want %q", tt.bundle, tt.root, got, tt.want)
		}
	}
	wd, _ := os.Getwd()
	if got := RootfsPath("b", &specs.Spec{Root: &specs.Root{Path: "rootfs"}}); got != filepath.Join(wd, "b", "rootfs") {
		t.Errorf("relative bundle: got %q, want it made absolute", got)
	}
	if got := RootfsPath("/b", &specs.Spec{}); got != "" {
		t.Errorf("no root: got %q, want empty", got)
	}
}

func TestSysctlPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"net.ipv4.ip_forward", "net/ipv4/ip_forward", true},
		{"net/ipv4/ip_forward", "net/ipv4/ip_forward", true},
		{"net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter", true},
		{"net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter", true},
		{"kernel.shmmax", "kernel/shmmax", true},
		{"", "", false},
		{"net..x", "", false},
		{"net/../x", "", false},
		{"net.//.x", "", false},
		{".net", "", false},
		{"net.x\x00", "", false},
	}
	for _, tt := range tests {
		got, err := SysctlPath(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("SysctlPath(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// acceptSeccomp stands in for seccomp.Validate where a test is about
// another part of the config (pkg/seccomp cannot be imported here).
func acceptSeccomp(*specs.LinuxSeccomp) error { return nil }

func TestValidateSeccompValidator(t *testing.T) {
	defaultAction := &FieldError{Field: "linux.seccomp.defaultAction", Msg: "x", Err: errors.New("sentinel")}
	arch := &FieldError{Field: "linux.seccomp.architectures[0]", Msg: `unknown architecture "x"`}
	tests := []struct {
		name      string
		validator SeccompValidator
		wantField string
		wantText  string
	}{
		{"validator accepts", acceptSeccomp, "", ""},
		{"plain error gets the seccomp field", func(*specs.LinuxSeccomp) error { return errors.New("no syscalls") },
			"linux.seccomp", "config.json: linux.seccomp: no syscalls"},
		{"field error keeps its field", func(*specs.LinuxSeccomp) error { return defaultAction },
			"linux.seccomp.defaultAction", "config.json: linux.seccomp.defaultAction: x"},
		{"several problems: the first leads, all are shown", func(*specs.LinuxSeccomp) error { return errors.Join(defaultAction, arch) },
			"linux.seccomp.defaultAction", "config.json: linux.seccomp.defaultAction: x\n" + `linux.seccomp.architectures[0]: unknown architecture "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundle, s := testBundle(t)
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
			err := Validate(s, bundle, tt.validator)
			if tt.wantField == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField || err.Error() != tt.wantText || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %q (%#v), want field %q, text %q", err, err, tt.wantField, tt.wantText)
			}
			if tt.validator != nil && errors.Is(tt.validator(nil), defaultAction.Err) && !errors.Is(err, defaultAction.Err) {
				t.Fatalf("err = %v lost the validator's sentinel", err)
			}
		})
	}
}

// Without a validator a seccomp profile must be refused, never accepted
// unchecked; a config without one needs no validator.
func TestValidateCannotSkipSeccomp(t *testing.T) {
	bundle, s := testBundle(t)
	if err := Validate(s, bundle, nil); err != nil {
		t.Fatalf("no linux.seccomp, no validator: %v", err)
	}
	s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	if err := Validate(s, bundle, nil); !errors.Is(err, ErrNoSeccompValidator) {
		t.Fatalf("Validate(nil validator) = %v, want ErrNoSeccompValidator", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, ConfigFile), []byte(mustJSON(t, s)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadBundle(bundle, nil); !errors.Is(err, ErrNoSeccompValidator) {
		t.Fatalf("LoadBundle(nil validator) = %v, want ErrNoSeccompValidator", err)
	}
}

// A mount label can only be honoured by SELinux: refused where SELinux is
// active (bulwark cannot apply labels), a warning where no policy reads it.
func TestValidateMountLabel(t *testing.T) {
	bundle, s := testBundle(t)
	s.Linux.MountLabel = "system_u:object_r:container_file_t:s0"
	warns, err := validate(s, bundle, acceptSeccomp)
	if _, serr := os.Stat("/sys/fs/selinux/enforce"); serr == nil {
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "linux.mountLabel" {
			t.Fatalf("SELinux host: err = %v, want a linux.mountLabel field error", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("host without SELinux: %v", err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "linux.mountLabel: SELinux is not enabled") {
		t.Fatalf("warnings = %q, want one about linux.mountLabel", warns)
	}
}

func TestInConfig(t *testing.T) {
	errno := unix.EPERM
	named := &FieldError{File: "profile.json", Field: "defaultAction", Msg: "x"}
	tests := []struct {
		name      string
		err       error
		want      string
		wantField string
	}{
		{"nil", nil, "", ""},
		{"plain error", errno, "config.json: operation not permitted", ""},
		{"field error without a file", &FieldError{Field: "linux.seccomp.flags[0]", Msg: "unsupported", Err: errno}, "config.json: linux.seccomp.flags[0]: unsupported", "linux.seccomp.flags[0]"},
		{"field error naming its file", named, "profile.json: defaultAction: x", "defaultAction"},
		{"joined field errors", errors.Join(&FieldError{Field: "a", Msg: "1"}, &FieldError{Field: "b", Msg: "2"}), "config.json: a: 1\nb: 2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := InConfig(tt.err)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("InConfig(nil) = %v", err)
				}
				return
			}
			if err.Error() != tt.want {
				t.Fatalf("InConfig() = %q, want %q", err, tt.want)
			}
			if tt.wantField == "" && !errors.Is(err, tt.err) {
				t.Fatalf("InConfig() = %v does not wrap %v", err, tt.err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("InConfig() = %#v, want a *FieldError with field %q", err, tt.wantField)
			}
			if tt.wantField == "linux.seccomp.flags[0]" && !errors.Is(err, errno) {
				t.Fatalf("InConfig() = %v lost the wrapped errno", err)
			}
		})
	}
	if named.File != "profile.json" {
		t.Fatal("InConfig changed its argument")
	}
}
