package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// Option changes a spec; it returns an error for input it cannot honour
// instead of producing a weaker spec.
type Option func(*specs.Spec) error

// Sentinel errors callers (the CLI) map to the flag that caused them.
var (
	ErrUnknownCapability = errors.New("unknown capability")
	ErrNotDevice         = errors.New("not a character or block device node")
	ErrConflict          = errors.New("conflicting settings")
	ErrUnknownProfile    = errors.New("unknown profile")
)

// Apply runs opts in order on s, then checks the combinations no single
// option can see (see check).
func Apply(s *specs.Spec, opts ...Option) error {
	for _, o := range opts {
		if err := o(s); err != nil {
			return err
		}
	}
	return check(s)
}

// Named prefixes o's error with name (a flag, a field), so that the person
// learns which of their inputs it was.
func Named(name string, o Option) Option {
	return func(s *specs.Spec) error {
		if err := o(s); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
}

// Base is the spec the options start from: runc's template (what
// `bulwark spec` writes, command "sh"), without a terminal.
func Base() *specs.Spec {
	s := oci.Example()
	s.Process.Terminal = false
	s.Hostname = "bulwark"
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	return s
}

// check refuses the combinations that undo a profile's threat model.
func check(s *specs.Spec) error {
	if oci.HasNamespace(s, specs.NetworkNamespace) {
		return nil
	}
	if c := s.Process.Capabilities; c != nil {
		for _, name := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW"} {
			if slices.Contains(c.Bounding, name) {
				return fmt.Errorf("%w: %s with the host's network would let the container reconfigure or sniff the host's interfaces; keep its own network namespace", ErrConflict, name)
			}
		}
	}
	return nil
}

func linux(s *specs.Spec) *specs.Linux {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return s.Linux
}

func resources(s *specs.Spec) *specs.LinuxResources {
	l := linux(s)
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	return l.Resources
}

func process(s *specs.Spec) *specs.Process {
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
	return s.Process
}

// newNS gives the container a new namespace of type t, not whatever one the
// config joined.
func newNS(s *specs.Spec, t specs.LinuxNamespaceType) {
	oci.SetNamespace(s, specs.LinuxNamespace{Type: t})
}

func addRootfsOption(s *specs.Spec, opt string) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	cur := s.Annotations[oci.AnnotationRootfsOptions]
	var list []string
	if cur != "" {
		list = strings.Split(cur, ",")
	}
	if !slices.Contains(list, opt) {
		list = append(list, opt)
	}
	s.Annotations[oci.AnnotationRootfsOptions] = strings.Join(list, ",")
}

// WithRootfs sets root.path; it must be an existing directory.
func WithRootfs(path string) Option {
	return func(s *specs.Spec) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("rootfs %q: %w", path, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("rootfs %q: not a directory", path)
		}
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Path = abs
		return nil
	}
}

// WithArgs sets the command.
func WithArgs(args ...string) Option {
	return func(s *specs.Spec) error {
		if len(args) == 0 {
			return errors.New("command: empty")
		}
		process(s).Args = slices.Clone(args)
		return nil
	}
}

// WithTerminal gives the process a pty.
func WithTerminal(on bool) Option {
	return func(s *specs.Spec) error { process(s).Terminal = on; return nil }
}

// WithHostname sets the hostname (the container has its own UTS namespace).
func WithHostname(h string) Option {
	return func(s *specs.Spec) error {
		if len(h) > 64 || strings.ContainsAny(h, "/ \x00") {
			return fmt.Errorf("hostname %q: not a valid host name", h)
		}
		newNS(s, specs.UTSNamespace)
		s.Hostname = h
		return nil
	}
}

// WithUserNamespace maps container ids 0..size-1 to host ids
// hostStart..hostStart+size-1 and makes the rootfs an idmapped mount, so
// that the container's root reads a rootfs owned by host root as its own.
// A hostStart of 0 is refused: the container's root would be the host's.
func WithUserNamespace(hostStart, size uint32) Option {
	return func(s *specs.Spec) error {
		if hostStart == 0 {
			return errors.New("user namespace: host id 0 would make the container's root the host's root")
		}
		if size == 0 || uint64(hostStart)+uint64(size) > 1<<32-1 {
			return fmt.Errorf("user namespace: range %d+%d is empty or overflows 32-bit ids", hostStart, size)
		}
		newNS(s, specs.UserNamespace)
		l := linux(s)
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostStart, Size: size}}
		l.UIDMappings, l.GIDMappings = m, slices.Clone(m)
		addRootfsOption(s, "idmap")
		return nil
	}
}

// WithIDMappings gives the container a new user namespace with the maps
// given, as a rootless caller's (pkg/rootless.IDMaps): the caller's own id
// as container root, its subordinate ranges above. No idmapped rootfs: the
// rootfs belongs to the caller, who is the container's root already. The
// maps must not give container root the host's root.
func WithIDMappings(uids, gids []specs.LinuxIDMapping) Option {
	return func(s *specs.Spec) error {
		for _, ms := range [][]specs.LinuxIDMapping{uids, gids} {
			if len(ms) == 0 {
				return errors.New("user namespace: empty id map")
			}
			for _, m := range ms {
				if m.HostID == 0 && m.ContainerID == 0 {
					return errors.New("user namespace: host id 0 would make the container's root the host's root")
				}
			}
		}
		newNS(s, specs.UserNamespace)
		l := linux(s)
		l.UIDMappings, l.GIDMappings = slices.Clone(uids), slices.Clone(gids)
		return nil
	}
}

// WithJoinedUserNamespace puts the container in the existing user namespace
// at path, whose maps are uid and gid, and makes the rootfs an idmapped
// mount through those maps. Maps that reach host id 0 are refused: the
// container's root would be the host's.
func WithJoinedUserNamespace(path string, uid, gid []specs.LinuxIDMapping) Option {
	return func(s *specs.Spec) error {
		if path == "" || len(uid) == 0 || len(gid) == 0 {
			return errors.New("user namespace: joining one needs its path and its uid and gid maps")
		}
		for _, m := range slices.Concat(uid, gid) {
			if m.HostID == 0 || (m.Size > 0 && uint64(m.HostID)+uint64(m.Size) > 1<<32-1) {
				return fmt.Errorf("user namespace %s: map %d %d %d reaches host id 0 or overflows 32-bit ids", path, m.ContainerID, m.HostID, m.Size)
			}
		}
		oci.SetNamespace(s, specs.LinuxNamespace{Type: specs.UserNamespace, Path: path})
		l := linux(s)
		l.UIDMappings, l.GIDMappings = slices.Clone(uid), slices.Clone(gid)
		addRootfsOption(s, "idmap")
		return nil
	}
}

// WithNoCapabilities empties all five capability sets.
func WithNoCapabilities() Option {
	return func(s *specs.Spec) error {
		process(s).Capabilities = &specs.LinuxCapabilities{
			Bounding: []string{}, Effective: []string{}, Permitted: []string{}, Inheritable: []string{}, Ambient: []string{},
		}
		return nil
	}
}

// CapName normalises "net_admin" / "NET_ADMIN" / "CAP_NET_ADMIN" and
// checks the name against the capabilities this build knows.
func CapName(n string) (string, error) {
	name := oci.CapabilityName(n)
	if !oci.IsKnownCapability(name) {
		return "", fmt.Errorf("%w %q", ErrUnknownCapability, n)
	}
	return name, nil
}

func capSets(c *specs.LinuxCapabilities) []*[]string {
	return []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable, &c.Ambient}
}

// WithCapabilities adds capabilities to every set, ambient included, so
// that a non-root user keeps them across execve (Docker's --cap-add does
// not, which is why "run as uid 1000 and bind port 80" fails there).
func WithCapabilities(names ...string) Option {
	return func(s *specs.Spec) error {
		p := process(s)
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, n := range names {
			name, err := CapName(n)
			if err != nil {
				return err
			}
			for _, set := range capSets(p.Capabilities) {
				if !slices.Contains(*set, name) {
					*set = append(*set, name)
				}
			}
		}
		return nil
	}
}

// WithoutCapabilities removes capabilities from every set; "ALL" removes
// them all.
func WithoutCapabilities(names ...string) Option {
	return func(s *specs.Spec) error {
		p := process(s)
		if p.Capabilities == nil {
			return nil
		}
		for _, n := range names {
			if strings.EqualFold(n, "ALL") {
				if err := WithNoCapabilities()(s); err != nil {
					return err
				}
				continue
			}
			name, err := CapName(n)
			if err != nil {
				return err
			}
			for _, set := range capSets(p.Capabilities) {
				*set = slices.DeleteFunc(*set, func(c string) bool { return c == name })
			}
		}
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs: no exec can raise privileges
// (set-user-id, file capabilities), whatever the rootfs ships.
func WithNoNewPrivileges() Option {
	return func(s *specs.Spec) error { process(s).NoNewPrivileges = true; return nil }
}

// WithSeccomp installs a seccomp profile after validating it.
func WithSeccomp(sc *specs.LinuxSeccomp) Option {
	return func(s *specs.Spec) error {
		if sc == nil {
			return errors.New("seccomp: no profile")
		}
		if err := seccomp.Validate(sc); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
		linux(s).Seccomp = sc
		return nil
	}
}

// WithReadonlyRootfs sets root.readonly.
func WithReadonlyRootfs(ro bool) Option {
	return func(s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Readonly = ro
		return nil
	}
}

func checkDest(dest string) (string, error) {
	if !filepath.IsAbs(dest) {
		return "", fmt.Errorf("destination %q: must be an absolute path", dest)
	}
	d := filepath.Clean(dest)
	if d == "/" {
		return "", fmt.Errorf("destination %q: cannot cover the container's root", dest)
	}
	return d, nil
}

func replaceMount(s *specs.Spec, m specs.Mount) {
	s.Mounts = slices.DeleteFunc(s.Mounts, func(o specs.Mount) bool { return filepath.Clean(o.Destination) == m.Destination })
	s.Mounts = append(s.Mounts, m)
}

// WithTmpfs mounts a fresh tmpfs of at most sizeBytes at dest, nosuid,
// nodev and noexec like Docker's --tmpfs: scratch space, not a place to
// run downloaded binaries from.
func WithTmpfs(dest string, sizeBytes int64) Option { return withTmpfs(dest, sizeBytes, "noexec") }

// WithExecTmpfs is WithTmpfs whose files may be executed: a compiler's
// output, `go run`, libraries that unpack native code to /tmp (JNA, Netty,
// sqlite-jdbc). Still nosuid and nodev.
func WithExecTmpfs(dest string, sizeBytes int64) Option { return withTmpfs(dest, sizeBytes, "exec") }

func withTmpfs(dest string, sizeBytes int64, exec string) Option {
	return func(s *specs.Spec) error {
		d, err := checkDest(dest)
		if err != nil {
			return fmt.Errorf("tmpfs %w", err)
		}
		if sizeBytes <= 0 {
			return fmt.Errorf("tmpfs %s: size must be positive (an unbounded tmpfs can eat the host's memory)", d)
		}
		replaceMount(s, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", exec, "mode=1777", "size=" + strconv.FormatInt(sizeBytes, 10)}})
		return nil
	}
}

// WithNosuidNodev adds nosuid and nodev to every mount present and to the
// rootfs. /dev and /dev/pts keep their device nodes usable: the nodes there
// are the runtime's, not the image's.
func WithNosuidNodev() Option {
	return func(s *specs.Spec) error {
		for i, m := range s.Mounts {
			add := []string{"nosuid", "nodev"}
			if d := filepath.Clean(m.Destination); d == "/dev" || d == "/dev/pts" {
				add = add[:1]
			}
			for _, o := range add {
				if !slices.Contains(m.Options, o) {
					s.Mounts[i].Options = append(s.Mounts[i].Options, o)
				}
			}
		}
		addRootfsOption(s, "nosuid")
		addRootfsOption(s, "nodev")
		return nil
	}
}

// DefaultMaskedPaths are runc's list plus what leaks kernel addresses,
// allocator state or host hardware data (see docs/profiles.md for each).
// /proc/interrupts, /proc/softirqs and /sys/kernel/irq carry the same
// per-cpu interrupt counters; /proc/stat's intr line does too but stays,
// because ps and top read /proc/stat (docs/escape.md).
var DefaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
	"/proc/kallsyms", "/proc/slabinfo", "/proc/vmallocinfo", "/proc/interrupts",
	"/proc/softirqs", "/sys/kernel/irq",
}

// DefaultReadonlyPaths are runc's.
var DefaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

func addPaths(dst *[]string, paths []string) error {
	for _, p := range paths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("path %q: must be absolute", p)
		}
		if !slices.Contains(*dst, p) {
			*dst = append(*dst, p)
		}
	}
	return nil
}

// WithMaskedPaths hides paths (empty file or directory); no paths means
// DefaultMaskedPaths.
func WithMaskedPaths(paths ...string) Option {
	return func(s *specs.Spec) error {
		if len(paths) == 0 {
			paths = DefaultMaskedPaths
		}
		return addPaths(&linux(s).MaskedPaths, paths)
	}
}

// WithReadonlyPaths makes paths read-only; no paths means
// DefaultReadonlyPaths.
func WithReadonlyPaths(paths ...string) Option {
	return func(s *specs.Spec) error {
		if len(paths) == 0 {
			paths = DefaultReadonlyPaths
		}
		return addPaths(&linux(s).ReadonlyPaths, paths)
	}
}

// WithDefaultDevicesOnly leaves the container the runtime's default nodes
// (null zero full random urandom tty, ptmx and its own pts): the devices
// cgroup denies everything else.
func WithDefaultDevicesOnly() Option {
	return func(s *specs.Spec) error {
		linux(s).Devices = nil
		resources(s).Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
		return nil
	}
}

// WithDevice gives the container the host node at path (same path inside),
// read and write through the devices cgroup, and nothing else of /dev.
func WithDevice(path string) Option {
	return func(s *specs.Spec) error {
		if !filepath.IsAbs(path) {
			return fmt.Errorf("device %q: must be an absolute path", path)
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return fmt.Errorf("device %q: %w", path, err)
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return fmt.Errorf("device %q: %w", path, ErrNotDevice)
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		l := linux(s)
		for _, d := range l.Devices {
			if filepath.Clean(d.Path) == filepath.Clean(path) {
				return nil
			}
		}
		mode := os.FileMode(0o660)
		var zero uint32
		l.Devices = append(l.Devices, specs.LinuxDevice{Path: filepath.Clean(path), Type: typ, Major: major, Minor: minor,
			FileMode: &mode, UID: &zero, GID: &zero})
		r := resources(s)
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: "rw"})
		return nil
	}
}

// WithPidsLimit caps the number of tasks (fork bombs stop there).
func WithPidsLimit(n int64) Option {
	return func(s *specs.Spec) error {
		if n <= 0 {
			return fmt.Errorf("pids limit %d: must be positive", n)
		}
		resources(s).Pids = &specs.LinuxPids{Limit: &n}
		return nil
	}
}

// WithMemoryLimit caps the container's memory (the OOM killer acts inside
// the container, not on the host's processes).
func WithMemoryLimit(bytes int64) Option {
	return func(s *specs.Spec) error {
		if bytes < 4<<20 {
			return fmt.Errorf("memory limit %d: below 4MiB no container starts", bytes)
		}
		r := resources(s)
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		r.Memory.Limit = &bytes
		return nil
	}
}

// WithHostNetwork shares the host's network namespace.
func WithHostNetwork() Option {
	return func(s *specs.Spec) error {
		oci.RemoveNamespace(s, specs.NetworkNamespace)
		// A per-namespace sysctl with the host's namespace would be
		// written to the host's: never.
		if s.Linux != nil {
			delete(s.Linux.Sysctl, UnprivilegedPortStart)
		}
		return nil
	}
}

// WithNetworkNone gives the container its own network namespace with only
// a loopback interface.
func WithNetworkNone() Option {
	return func(s *specs.Spec) error {
		newNS(s, specs.NetworkNamespace)
		l := linux(s)
		if l.Sysctl == nil {
			l.Sysctl = map[string]string{}
		}
		l.Sysctl[UnprivilegedPortStart] = "0"
		return nil
	}
}

// WithNetworkNamespace joins the network namespace bound at path (made and
// attached by the person face before create). Its per-namespace sysctls are
// the maker's to set: the namespace is not the container's user
// namespace's, so the init could not write them.
func WithNetworkNamespace(path string) Option {
	return func(s *specs.Spec) error {
		oci.SetNamespace(s, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: path})
		if s.Linux != nil {
			delete(s.Linux.Sysctl, UnprivilegedPortStart)
		}
		return nil
	}
}

// UnprivilegedPortStart is set to 0 in a container's own network
// namespace, as Docker does: container root (an unprivileged host id, with
// no capabilities) can then bind port 80 there, where the only thing a low
// port protects is the container's own loopback. It is per namespace, so
// the host's value is untouched, and with --net host it is not set at all.
const UnprivilegedPortStart = "net.ipv4.ip_unprivileged_port_start"

// WithUser runs the process as uid:gid (container ids).
func WithUser(uid, gid uint32) Option {
	return func(s *specs.Spec) error {
		p := process(s)
		p.User.UID, p.User.GID = uid, gid
		return nil
	}
}

// WithEnv sets KEY=VALUE pairs, replacing an existing KEY.
func WithEnv(kvs ...string) Option {
	return func(s *specs.Spec) error {
		p := process(s)
		for _, kv := range kvs {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("env %q: want KEY=VALUE", kv)
			}
			p.Env = slices.DeleteFunc(p.Env, func(e string) bool { return strings.HasPrefix(e, k+"=") })
			p.Env = append(p.Env, kv)
		}
		return nil
	}
}

// WithCwd sets the working directory.
func WithCwd(dir string) Option {
	return func(s *specs.Spec) error {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("working directory %q: must be absolute", dir)
		}
		process(s).Cwd = filepath.Clean(dir)
		return nil
	}
}

// WithMount bind-mounts the host path src at dst, nosuid and nodev (a
// volume is data, not a way to bring set-user-id programs or device nodes
// in), read-only when ro.
func WithMount(src, dst string, ro bool) Option {
	return func(s *specs.Spec) error {
		d, err := checkDest(dst)
		if err != nil {
			return fmt.Errorf("mount %w", err)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return fmt.Errorf("mount source %q: %w", src, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("mount source: %w", err)
		}
		opts := []string{"rbind", "nosuid", "nodev"}
		if ro {
			opts = append(opts, "ro")
		}
		replaceMount(s, specs.Mount{Destination: d, Type: "bind", Source: abs, Options: opts})
		return nil
	}
}

// WithRlimit sets one process rlimit, replacing an earlier one of the type.
func WithRlimit(typ string, soft, hard uint64) Option {
	return func(s *specs.Spec) error {
		if soft > hard {
			return fmt.Errorf("rlimit %s: soft %d above hard %d", typ, soft, hard)
		}
		p := process(s)
		p.Rlimits = slices.DeleteFunc(p.Rlimits, func(r specs.POSIXRlimit) bool { return r.Type == typ })
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
		return nil
	}
}

// WithAnnotation sets an annotation.
func WithAnnotation(k, v string) Option {
	return func(s *specs.Spec) error {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
		return nil
	}
}

// WithCgroupNamespace gives the container its own cgroup namespace, so
// /proc/self/cgroup and a cgroup mount show the container's cgroup as "/"
// instead of the host's hierarchy and naming.
func WithCgroupNamespace() Option {
	return func(s *specs.Spec) error { newNS(s, specs.CgroupNamespace); return nil }
}

// WithLandlock confines filesystem access to the container's own mounts
// (pkg/landlock): a host path reached through a leaked fd or /proc/PID/root
// stays out of reach even if every other layer failed.
func WithLandlock() Option {
	return WithAnnotation(oci.AnnotationLandlock, landlock.ModeEnforce)
}
