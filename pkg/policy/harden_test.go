package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// dockerCaps is the capability list dockerd writes into config.json by
// default (moby oci/caps/defaults.go).
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dockerShaped is a config as dockerd writes it for `docker run
// --security-opt seccomp=unconfined`: 14 capabilities, no seccomp, no
// no_new_privs, no pids limit.
func dockerShaped() *specs.Spec {
	c := func() []string { return slices.Clone(dockerCaps) }
	return &specs.Spec{
		Process: &specs.Process{
			Args: []string{"sh"},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: c(), Effective: c(), Permitted: c(), Inheritable: c(),
			},
		},
		Linux: &specs.Linux{
			MaskedPaths: []string{"/proc/kcore"},
			Resources:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
		},
	}
}

func allCaps() []string {
	return []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MKNOD"}
}

func privilegedShaped() *specs.Spec {
	s := dockerShaped()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps(), Effective: allCaps(), Permitted: allCaps()}
	return s
}

func inAnySet(c *specs.LinuxCapabilities, name string) bool {
	return slices.Contains(c.Bounding, name) || slices.Contains(c.Effective, name) || slices.Contains(c.Permitted, name) ||
		slices.Contains(c.Inheritable, name) || slices.Contains(c.Ambient, name)
}

func TestHarden(t *testing.T) {
	limit := int64(50)
	tests := []struct {
		name    string
		spec    func() *specs.Spec
		cfg     HardenConfig
		wantErr error
		// check inspects the hardened spec and the decisions.
		check func(t *testing.T, s *specs.Spec, ds []Decision)
	}{
		{
			name: "docker-shaped config is raised to the floor",
			spec: dockerShaped,
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if !s.Process.NoNewPrivileges {
					t.Error("no_new_privs not set")
				}
				if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction == specs.ActAllow {
					t.Errorf("default seccomp profile not applied: %+v", s.Linux.Seccomp)
				}
				for _, c := range []string{"CAP_NET_RAW", "CAP_MKNOD"} {
					if inAnySet(s.Process.Capabilities, c) {
						t.Errorf("%s kept", c)
					}
				}
				for _, c := range []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"} {
					if !slices.Contains(s.Process.Capabilities.Effective, c) {
						t.Errorf("%s dropped, but the floor only drops the listed capabilities", c)
					}
				}
				if n := s.Linux.Resources.Pids; n == nil || *n.Limit != FloorPidsLimit {
					t.Errorf("pids limit = %+v, want %d", n, FloorPidsLimit)
				}
				for _, p := range []string{"/proc/kcore", "/proc/kallsyms", "/sys/firmware"} {
					if !slices.Contains(s.Linux.MaskedPaths, p) {
						t.Errorf("%s not masked", p)
					}
				}
				for _, p := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"} {
					if !slices.Contains(s.Linux.ReadonlyPaths, p) {
						t.Errorf("%s not read-only", p)
					}
				}
				if n := strings.Count(strings.Join(s.Linux.MaskedPaths, " "), "/proc/kcore"); n != 1 {
					t.Errorf("/proc/kcore listed %d times", n)
				}
				if s.Annotations[oci.AnnotationLandlock] != landlock.ModeEnforce {
					t.Errorf("landlock annotation = %q", s.Annotations[oci.AnnotationLandlock])
				}
				fields := map[string]bool{}
				for _, d := range ds {
					if d.Reason == "" || d.Action == "" {
						t.Errorf("decision without reason or action: %+v", d)
					}
					fields[d.Field] = true
				}
				for _, f := range []string{"process.noNewPrivileges", "linux.seccomp", "process.capabilities", "linux.maskedPaths", "linux.readonlyPaths", "linux.resources.pids.limit", fmt.Sprintf("annotations[%q]", oci.AnnotationLandlock)} {
					if !fields[f] {
						t.Errorf("no decision logged for %s: %+v", f, ds)
					}
				}
			},
		},
		{
			name: "allow annotation keeps NET_RAW, in any spelling",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Annotations = map[string]string{oci.AnnotationAllow: "net_raw, CAP_MKNOD"}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				for _, c := range []string{"CAP_NET_RAW", "CAP_MKNOD"} {
					if !slices.Contains(s.Process.Capabilities.Bounding, c) || !slices.Contains(s.Process.Capabilities.Effective, c) {
						t.Errorf("%s dropped although allowed", c)
					}
				}
				if !s.Process.NoNewPrivileges {
					t.Error("allowing a capability switched off the rest of the floor")
				}
			},
		},
		{
			name: "a config without limits gets the floor's memory and pids limits",
			spec: dockerShaped,
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if m := s.Linux.Resources.Memory; m == nil || m.Limit == nil || *m.Limit != FloorMemoryLimit {
					t.Errorf("memory %+v, want the floor's limit %d", m, FloorMemoryLimit)
				}
				if p := s.Linux.Resources.Pids; p == nil || *p.Limit != FloorPidsLimit {
					t.Errorf("pids %+v, want the floor's limit", p)
				}
			},
		},
		{
			name: "the policy sets the memory limit, lowered to a smaller memory+swap",
			spec: func() *specs.Spec {
				s := dockerShaped()
				swap := int64(256 << 20)
				s.Linux.Resources.Memory = &specs.LinuxMemory{Swap: &swap}
				return s
			},
			cfg: HardenConfig{MemoryLimit: "512m"},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if m := s.Linux.Resources.Memory; *m.Limit != 256<<20 || *m.Swap != 256<<20 {
					t.Errorf("memory limit %d swap %d, want both 256 MiB", *m.Limit, *m.Swap)
				}
			},
		},
		{
			name: "the policy switches both limits off",
			spec: dockerShaped,
			cfg:  HardenConfig{MemoryLimit: MemoryNone, PidsLimit: -1},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if r := s.Linux.Resources; r.Memory != nil || r.Pids != nil {
					t.Errorf("resources %+v, want no memory or pids limit", r)
				}
			},
		},
		{
			name: "host policy allow list keeps a capability",
			spec: dockerShaped,
			cfg:  HardenConfig{Allow: []string{"NET_RAW"}, PidsLimit: 300},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if !slices.Contains(s.Process.Capabilities.Effective, "CAP_NET_RAW") {
					t.Error("CAP_NET_RAW dropped although the policy allows it")
				}
				if *s.Linux.Resources.Pids.Limit != 300 {
					t.Errorf("pids limit %d, want the policy's 300", *s.Linux.Resources.Pids.Limit)
				}
			},
		},
		{
			name: "what the config already has is left alone",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Process.NoNewPrivileges = true
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
				s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
				mem := int64(8 << 30)
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &mem}
				s.Annotations = map[string]string{oci.AnnotationLandlock: landlock.ModeOff}
				s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) != 0 {
					t.Error("the config's own seccomp profile was replaced")
				}
				if *s.Linux.Resources.Pids.Limit != limit {
					t.Errorf("pids limit %d, want the config's %d", *s.Linux.Resources.Pids.Limit, limit)
				}
				if *s.Linux.Resources.Memory.Limit != 8<<30 {
					t.Errorf("memory limit %d, want the config's 8 GiB", *s.Linux.Resources.Memory.Limit)
				}
				if s.Annotations[oci.AnnotationLandlock] != landlock.ModeOff {
					t.Error("the config's landlock annotation was overridden")
				}
				if len(ds) != 2 || ds[0].Field != "linux.maskedPaths" || ds[1].Field != "linux.readonlyPaths" {
					t.Errorf("want only the masked and read-only paths decisions, got %+v", ds)
				}
			},
		},
		{
			name:    "privileged-shaped config is refused",
			spec:    privilegedShaped,
			wantErr: ErrPrivileged,
		},
		{
			name: "all devices with all capabilities is privileged-shaped even with seccomp",
			spec: func() *specs.Spec {
				s := privilegedShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
				s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
				return s
			},
			wantErr: ErrPrivileged,
		},
		{
			name: "all capabilities with a seccomp profile and a device allowlist is not privileged-shaped",
			spec: func() *specs.Spec {
				s := privilegedShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if inAnySet(s.Process.Capabilities, "CAP_SYS_ADMIN") || inAnySet(s.Process.Capabilities, "CAP_SYS_MODULE") {
					t.Error("CAP_SYS_ADMIN or CAP_SYS_MODULE kept")
				}
			},
		},
		{
			name: "capabilities outside Docker's defaults are dropped from all five sets unless allowed",
			spec: func() *specs.Spec {
				s := dockerShaped()
				extra := []string{"CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "CAP_BPF", "cap_sys_time", "CAP_WAKE_ALARM", "CAP_SYS_NICE"}
				c := s.Process.Capabilities
				for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient} {
					*set = append(*set, extra...)
				}
				s.Annotations = map[string]string{oci.AnnotationAllow: "SYS_NICE"}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				for _, c := range []string{"CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN", "CAP_BPF", "cap_sys_time", "CAP_WAKE_ALARM"} {
					if inAnySet(s.Process.Capabilities, c) {
						t.Errorf("%s kept", c)
					}
					name := strings.ToUpper(c)
					if !slices.ContainsFunc(ds, func(d Decision) bool {
						return strings.HasPrefix(d.Action, "dropped "+name+" from bounding, effective, permitted, inheritable, ambient")
					}) {
						t.Errorf("no decision for dropping %s from all five sets: %+v", name, ds)
					}
				}
				if !slices.Contains(s.Process.Capabilities.Ambient, "CAP_SYS_NICE") {
					t.Error("CAP_SYS_NICE dropped although annotated")
				}
				for _, c := range []string{"CAP_CHOWN", "CAP_SETUID", "CAP_AUDIT_WRITE"} {
					if !slices.Contains(s.Process.Capabilities.Effective, c) {
						t.Errorf("Docker default %s dropped", c)
					}
				}
			},
		},
		{
			name: "open_by_handle_at is refused whatever the engine's profile allows",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "open_by_handle_at", "write"}, Action: specs.ActAllow}}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				for _, r := range s.Linux.Seccomp.Syscalls {
					if r.Action == specs.ActAllow && slices.Contains(r.Names, "open_by_handle_at") {
						t.Errorf("open_by_handle_at still allowed: %+v", r)
					}
					if r.Action == specs.ActAllow && !slices.Contains(r.Names, "read") {
						t.Errorf("the rest of the rule was lost: %+v", r)
					}
				}
				if !slices.ContainsFunc(ds, func(d Decision) bool {
					return d.Field == "linux.seccomp" && strings.Contains(d.Action, "open_by_handle_at")
				}) {
					t.Errorf("no decision names open_by_handle_at: %+v", ds)
				}
			},
		},
		{
			name: "new namespaces are refused although dockerd allowed them with SYS_ADMIN",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "clone", "clone3", "unshare", "setns", "write"}, Action: specs.ActAllow}}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				var clone, clone3 []specs.LinuxSyscall
				for _, r := range s.Linux.Seccomp.Syscalls {
					if r.Action == specs.ActAllow && (slices.Contains(r.Names, "unshare") || slices.Contains(r.Names, "setns")) {
						t.Errorf("unshare or setns still allowed: %+v", r)
					}
					if slices.Contains(r.Names, "clone") {
						clone = append(clone, r)
					}
					if slices.Contains(r.Names, "clone3") {
						clone3 = append(clone3, r)
					}
				}
				want := specs.LinuxSeccompArg{Index: 0, Op: specs.OpMaskedEqual, Value: cloneNewMask, ValueTwo: 0}
				if len(clone) != 1 || clone[0].Action != specs.ActAllow || !slices.Equal(clone[0].Args, []specs.LinuxSeccompArg{want}) {
					t.Errorf("clone rules %+v, want one allow without namespace flags", clone)
				}
				if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || *clone3[0].ErrnoRet != uint(unix.ENOSYS) {
					t.Errorf("clone3 rules %+v, want ENOSYS (the C library falls back to clone)", clone3)
				}
			},
		},
		{
			name: "SYS_ADMIN allowed by annotation keeps the engine's namespace rules",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Annotations = map[string]string{"run.bulwark.allow": "SYS_ADMIN"}
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"clone", "clone3", "unshare"}, Action: specs.ActAllow}}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				rs := s.Linux.Seccomp.Syscalls
				if len(rs) != 1 || !slices.Equal(rs[0].Names, []string{"clone", "clone3", "unshare"}) {
					t.Errorf("rules %+v, want the engine's clone, clone3 and unshare allow untouched", rs)
				}
			},
		},
		{
			name: "a denylist profile gets a rule refusing open_by_handle_at",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				rs := s.Linux.Seccomp.Syscalls
				// open_by_handle_at, the ptrace group, unshare and setns,
				// clone with each of 7 namespace flags, clone3, two ioctls.
				if len(rs) != 13 || rs[0].Action != specs.ActErrno || !slices.Equal(rs[0].Names, []string{"open_by_handle_at"}) || rs[0].ErrnoRet == nil || *rs[0].ErrnoRet != 1 {
					t.Fatalf("want EPERM rules for open_by_handle_at, the ptrace group, namespaces and two ioctls, got %+v", rs)
				}
				if !slices.Contains(rs[1].Names, "ptrace") || !slices.Contains(rs[1].Names, "process_vm_writev") || *rs[1].ErrnoRet != 1 {
					t.Errorf("ptrace group rule %+v", rs[1])
				}
				if !slices.Equal(rs[2].Names, []string{"unshare", "setns"}) || *rs[2].ErrnoRet != 1 {
					t.Errorf("namespace rule %+v", rs[2])
				}
				for _, r := range rs[3:10] {
					if !slices.Equal(r.Names, []string{"clone"}) || r.Action != specs.ActErrno || len(r.Args) != 1 || r.Args[0].Value != r.Args[0].ValueTwo {
						t.Errorf("clone rule %+v, want EPERM when one namespace flag is set", r)
					}
				}
				if !slices.Equal(rs[10].Names, []string{"clone3"}) || *rs[10].ErrnoRet != uint(unix.ENOSYS) {
					t.Errorf("clone3 rule %+v, want ENOSYS", rs[10])
				}
				for i, cmd := range []uint64{0x5412, 0x541c} {
					r := rs[11+i]
					if !slices.Equal(r.Names, []string{"ioctl"}) || *r.ErrnoRet != 1 || len(r.Args) != 1 ||
						r.Args[0] != (specs.LinuxSeccompArg{Index: 1, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: cmd}) {
						t.Errorf("ioctl rule %d = %+v, want EPERM on args[1]&0xffffffff == %#x", i, r, cmd)
					}
				}
			},
		},
		{
			name: "Docker's shape of profile: ioctl allowed but for TIOCSTI and TIOCLINUX, ptrace falls to the default",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "ioctl", "ptrace", "process_vm_readv"}, Action: specs.ActAllow}}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				rs := s.Linux.Seccomp.Syscalls
				if len(rs) != 4 || !slices.Equal(rs[0].Names, []string{"read"}) {
					t.Fatalf("want read's allow, two ioctl denials and a conditional ioctl allow, got %+v", rs)
				}
				for _, r := range rs[1:3] {
					// EPERM is also the default action here: the loader keeps
					// such rules when another rule for ioctl has another action.
					if r.Action != specs.ActErrno || *r.ErrnoRet != uint(unix.EPERM) || len(r.Args) != 1 {
						t.Errorf("ioctl denial %+v, want EPERM with a condition", r)
					}
				}
				if r := rs[3]; r.Action != specs.ActAllow || len(r.Args) != 1 || r.Args[0].Op != specs.OpGreaterEqual {
					t.Errorf("ioctl allow %+v, want a conditional (always true) allow", r)
				}
				if !slices.ContainsFunc(ds, func(d Decision) bool { return strings.Contains(d.Action, "ptrace process_vm_readv") }) {
					t.Errorf("no decision names the ptrace denial: %+v", ds)
				}
			},
		},
		{
			name: "an annotated SYS_PTRACE keeps ptrace as the profile says",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Annotations = map[string]string{oci.AnnotationAllow: "SYS_PTRACE"}
				s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
					{Names: []string{"ptrace"}, Action: specs.ActAllow}}}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if rs := s.Linux.Seccomp.Syscalls; len(rs) != 1 || !slices.Equal(rs[0].Names, []string{"ptrace"}) || rs[0].Action != specs.ActAllow {
					t.Errorf("ptrace rule changed although SYS_PTRACE is annotated: %+v", rs)
				}
			},
		},
		{
			name: "sysfs and binds of the host's /sys are made read-only, recursively for binds",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Mounts = []specs.Mount{
					{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "rw"}},
					{Destination: "/host-sys", Type: "bind", Source: "/sys/kernel", Options: []string{"rbind", "rrw"}},
					{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rw"}},
				}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if o := s.Mounts[0].Options; !slices.Equal(o, []string{"nosuid", "ro"}) {
					t.Errorf("sysfs options %v", o)
				}
				if o := s.Mounts[1].Options; !slices.Equal(o, []string{"rbind", "ro", "rro"}) {
					t.Errorf("/sys/kernel bind options %v", o)
				}
				if o := s.Mounts[2].Options; !slices.Equal(o, []string{"rbind", "rw"}) {
					t.Errorf("unrelated bind changed: %v", o)
				}
			},
		},
		{
			name: "sysfs-rw keeps a read-write /sys",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Mounts = []specs.Mount{{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"rw"}}}
				s.Annotations = map[string]string{oci.AnnotationAllow: "SYSFS-RW"}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if o := s.Mounts[0].Options; !slices.Equal(o, []string{"rw"}) {
					t.Errorf("sysfs options %v", o)
				}
				if !slices.ContainsFunc(ds, func(d Decision) bool { return d.Action == "left read-write" }) {
					t.Errorf("no decision for the kept read-write /sys: %+v", ds)
				}
			},
		},
		{
			name: "privileged-shaped config runs as written when annotated",
			spec: func() *specs.Spec {
				s := privilegedShaped()
				s.Annotations = map[string]string{oci.AnnotationAllow: "privileged"}
				return s
			},
			check: func(t *testing.T, s *specs.Spec, ds []Decision) {
				if !inAnySet(s.Process.Capabilities, "CAP_SYS_ADMIN") || s.Linux.Seccomp != nil || s.Process.NoNewPrivileges {
					t.Error("an allowed privileged config was changed")
				}
				if len(ds) != 1 || !strings.Contains(ds[0].Reason, oci.AnnotationAllow) {
					t.Errorf("want one decision naming the annotation, got %+v", ds)
				}
			},
		},
		{
			name: "misspelt allow annotation is an error",
			spec: func() *specs.Spec {
				s := dockerShaped()
				s.Annotations = map[string]string{oci.AnnotationAllow: "NET_RWA"}
				return s
			},
			wantErr: errAny,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec()
			ds, err := Harden(s, tc.cfg)
			switch {
			case tc.wantErr == errAny:
				if err == nil || !strings.Contains(err.Error(), oci.AnnotationAllow) {
					t.Fatalf("want an error naming %s, got %v", oci.AnnotationAllow, err)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), oci.AnnotationAllow+": "+AllowPrivileged) {
					t.Fatalf("want %v naming the opt-in annotation, got %v", tc.wantErr, err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			tc.check(t, s, ds)
		})
	}
}

var errAny = errors.New("any error")

func TestLoadPolicyFile(t *testing.T) {
	d := t.TempDir()
	tests := []struct {
		name, content string
		// mode is the file's mode; 0 means 0644.
		mode    os.FileMode
		want    *PolicyFile
		wantErr string
	}{
		{name: "missing file is no policy"},
		{name: "full", content: `{"harden": true, "allow": ["NET_RAW"], "pidsLimit": 2048}`,
			want: &PolicyFile{Harden: true, HardenConfig: HardenConfig{Allow: []string{"NET_RAW"}, PidsLimit: 2048}}},
		{name: "misspelt field", content: `{"hardne": true}`, wantErr: "hardne"},
		{name: "unknown capability", content: `{"harden": true, "allow": ["NET_RWA"]}`, wantErr: "allow"},
		{name: "limits", content: `{"pidsLimit": -1, "memoryLimit": "2g"}`,
			want: &PolicyFile{HardenConfig: HardenConfig{PidsLimit: -1, MemoryLimit: "2g"}}},
		{name: "negative pids", content: `{"pidsLimit": -2}`, wantErr: "pidsLimit"},
		{name: "memory not a size", content: `{"memoryLimit": "lots"}`, wantErr: "memoryLimit"},
		{name: "memory too small", content: `{"memoryLimit": "1m"}`, wantErr: "memoryLimit"},
		{name: "userns", content: `{"userns": "require", "allow": ["host-users"]}`,
			want: &PolicyFile{HardenConfig: HardenConfig{Userns: UsernsRequire, Allow: []string{"host-users"}}}},
		{name: "userns misspelt", content: `{"userns": "required"}`, wantErr: "userns"},
		{name: "syntax", content: `{"harden": tru}`, wantErr: "policy"},
		// Anyone in the group could switch the floor off.
		{name: "group-writable", content: `{"harden": true}`, mode: 0o664, wantErr: "writable by group or others"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(d, "policy"+string(rune('a'+i))+".json")
			if tc.content != "" {
				mode := tc.mode
				if mode == 0 {
					mode = 0o644
				}
				if err := os.WriteFile(p, []byte(tc.content), mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LoadPolicyFile(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("want an error naming %q and the file, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || got != nil && (got.Harden != tc.want.Harden || got.PidsLimit != tc.want.PidsLimit || got.MemoryLimit != tc.want.MemoryLimit || !slices.Equal(got.Allow, tc.want.Allow)) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
