package policy

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/caps"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// Defaults of the floor every profile starts from.
const (
	DefaultPidsLimit   = 1024
	DefaultMemoryLimit = 512 << 20
	DefaultTmpSize     = 64 << 20
	// DefaultMemlock is the floor's RLIMIT_MEMLOCK, the kernel's historical
	// default: untrusted code has no business pinning memory.
	DefaultMemlock = 64 << 10
	// DatabaseMemlock is the database profile's RLIMIT_MEMLOCK: inside a
	// user namespace CAP_IPC_LOCK does not lift the limit (mlock checks
	// the capability in the host's user namespace), so the limit itself
	// must allow what the database locks. A runtime without
	// CAP_SYS_RESOURCE cannot raise a hard limit and gives its own instead
	// (DatabaseMemlockLimit).
	DatabaseMemlock = 256 << 20
	// AppUID is the non-root user of webapp and database.
	AppUID = 1000
)

// DockerDefaultCaps are the 14 capabilities Docker grants by default.
var DockerDefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Default is the floor: every profile is Default plus its changes. The
// user namespace maps the first pool range; a runtime that allocates one
// per container applies WithUserNamespace again with it.
func Default() []Option {
	return []Option{
		WithUserNamespace(userns.DefaultBase, userns.DefaultSize),
		WithNoCapabilities(),
		WithNoNewPrivileges(),
		WithSeccomp(profiles.Default()),
		WithReadonlyRootfs(true),
		WithTmpfs("/tmp", DefaultTmpSize),
		WithNosuidNodev(),
		WithMaskedPaths(),
		WithReadonlyPaths(),
		WithDefaultDevicesOnly(),
		WithPidsLimit(DefaultPidsLimit),
		WithRlimit("RLIMIT_MEMLOCK", DefaultMemlock, DefaultMemlock),
		WithMemoryLimit(DefaultMemoryLimit),
		WithNetworkNone(),
		WithCgroupNamespace(),
		WithLandlock(),
	}
}

type profile struct {
	summary string
	// options come after Default; devices are the --device paths.
	options func(devices []string) ([]Option, error)
}

func devicesOpts(devices []string) []Option {
	var out []Option
	for _, d := range devices {
		out = append(out, WithDevice(d))
	}
	return out
}

func plain(opts ...Option) func([]string) ([]Option, error) {
	return func(devices []string) ([]Option, error) {
		return append(slices.Clone(opts), devicesOpts(devices)...), nil
	}
}

// lazy builds a profile's options when it is used: the seccomp profiles
// cost a few hundred microseconds to build, which every bulwark process
// (each container's init included) paid at start-up as package init.
func lazy(opts func() []Option) func([]string) ([]Option, error) {
	return func(devices []string) ([]Option, error) { return plain(opts()...)(devices) }
}

var webapp = []Option{WithUser(AppUID, AppUID), WithCapabilities("CAP_NET_BIND_SERVICE")}

var profileTable = map[string]profile{
	"default": {"untrusted code: no privileges at all", plain()},
	"webapp":  {"network service as uid 1000 with NET_BIND_SERVICE only", plain(webapp...)},
	"database": {"webapp plus IPC_LOCK and a memlock limit for locked buffers",
		plain(append(slices.Clone(webapp), WithCapabilities("CAP_IPC_LOCK"),
			withDatabaseMemlock())...)},
	// dev's /tmp is exec: compilers, `go run` and test runners build
	// programs there and run them, and the threat is mistakes, not abuse.
	"dev": {"trusted team code: writable rootfs, an exec /tmp, Docker's capabilities minus SYS_ADMIN, NET_RAW, MKNOD",
		plain(WithReadonlyRootfs(false), WithExecTmpfs("/tmp", DefaultTmpSize), WithCapabilities(DockerDefaultCaps...),
			WithoutCapabilities("CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_MKNOD"))},
	"netadmin": {"NET_ADMIN and NET_RAW inside the container's own network namespace",
		lazy(func() []Option {
			return []Option{WithNetworkNone(), WithCapabilities("CAP_NET_ADMIN", "CAP_NET_RAW"), WithSeccomp(profiles.NetAdmin())}
		})},
	"gpu": {"the GPU nodes named with --device (default: /dev/dri/*, /dev/nvidia*)",
		func(devices []string) ([]Option, error) {
			if len(devices) == 0 {
				devices = gpuNodes()
				if len(devices) == 0 {
					return nil, fmt.Errorf("profile gpu: no /dev/dri/* or /dev/nvidia* on this host; name the nodes with --device")
				}
			}
			return devicesOpts(devices), nil
		}},
	"rawdisk": {"the block devices named with --device, nothing else",
		func(devices []string) ([]Option, error) {
			if len(devices) == 0 {
				return nil, fmt.Errorf("profile rawdisk: name the disk(s) with --device")
			}
			return devicesOpts(devices), nil
		}},
	"vm": {"the default profile's walls, inside a virtual machine of its own (docs/vm.md)",
		plain(WithAnnotation(oci.AnnotationIsolation, oci.IsolationVM))},
	"strict": {"compute only: strict seccomp (no sockets, no new processes), no caps, read-only but /tmp, no network",
		lazy(func() []Option {
			return []Option{WithSeccomp(profiles.Strict()), WithNoCapabilities(), WithReadonlyRootfs(true), WithNetworkNone()}
		})},
}

func withDatabaseMemlock() Option {
	return func(s *specs.Spec) error {
		n := DatabaseMemlockLimit()
		return WithRlimit("RLIMIT_MEMLOCK", n, n)(s)
	}
}

// DatabaseMemlockLimit is DatabaseMemlock, or the calling process's hard
// RLIMIT_MEMLOCK when that is lower and the process lacks
// CAP_SYS_RESOURCE to raise it.
func DatabaseMemlockLimit() uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil || lim.Max >= DatabaseMemlock {
		return DatabaseMemlock
	}
	if c, err := caps.Current(); err == nil && slices.Contains(c["effective"], "CAP_SYS_RESOURCE") {
		return DatabaseMemlock
	}
	return lim.Max
}

// gpuNodes lists the GPU device nodes present on the host.
func gpuNodes() []string {
	var out []string
	for _, pat := range []string{"/dev/dri/*", "/dev/nvidia*"} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	return out
}

// ProfileNames returns the names, sorted.
func ProfileNames() []string {
	var out []string
	for n := range profileTable {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Profile returns the options of a named profile: Default followed by the
// profile's changes. devices are the nodes the user named (--device); gpu
// picks the host's GPU nodes without them, rawdisk requires them.
func Profile(name string, devices ...string) ([]Option, error) {
	p, ok := profileTable[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownProfile, name, ProfileNames())
	}
	extra, err := p.options(devices)
	if err != nil {
		return nil, err
	}
	return append(Default(), extra...), nil
}

// Spec builds the full spec of a profile over Base.
func Spec(name string, devices ...string) (*specs.Spec, error) {
	opts, err := Profile(name, devices...)
	if err != nil {
		return nil, err
	}
	s := Base()
	if err := Apply(s, opts...); err != nil {
		return nil, err
	}
	return s, nil
}
