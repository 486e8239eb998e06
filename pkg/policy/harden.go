package policy

// The hardening floor.
//
// Threat: in OCI mode Bulwark runs whatever config an engine hands it, and
// engines hand out weak ones by default: Docker's 14 capabilities include
// NET_RAW (ARP and DNS spoofing on the bridge) and MKNOD, no_new_privs is
// off so a setuid binary in the image raises privileges, a config without
// linux.seccomp exposes every syscall, Docker's profile lets a process
// trace its siblings and push input into a terminal (TIOCSTI), and nothing
// limits pids or memory. An operator
// who cannot change every engine's defaults switches on the floor
// (`bulwark --harden` or /etc/bulwark/policy.json), and every container
// Bulwark creates is raised to it. Each change is returned as a Decision
// with its reason so the runtime can log it: an engine or a person can see
// exactly how the config that ran differs from the one they wrote.
//
// The floor only raises: it never grants what the config did not ask for.
// A container opts out of single items with the annotation
// run.bulwark.allow (capability names, comma-separated, or sysfs-rw for a
// writable /sys), and out of the
// privileged-shape refusal with run.bulwark.allow: privileged, which also
// leaves the rest of that config as written (a --privileged container is
// meant to be one).

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
	"github.com/bulwark-sec/bulwark/pkg/units"
)

// AllowPrivileged in oci.AnnotationAllow lets a privileged-shaped config run.
const AllowPrivileged = "privileged"

// AllowSysfsRW in oci.AnnotationAllow keeps a read-write /sys the config asks for.
const AllowSysfsRW = "sysfs-rw"

// DefaultPolicyPath is where the host's policy file is read from.
const DefaultPolicyPath = "/etc/bulwark/policy.json"

// FloorPidsLimit is the pids limit the floor sets when the config has none.
const FloorPidsLimit = 1024

// FloorMemoryLimit is the memory limit the floor sets when the config has none.
const FloorMemoryLimit = 1 << 30

// ErrPrivileged is wrapped by the refusal of a privileged-shaped config.
var ErrPrivileged = errors.New("privileged-shaped config refused by the hardening floor")

// Decision is one change (or deliberate non-change) the floor made.
type Decision struct {
	// Field is the config.json field concerned, e.g. "linux.seccomp".
	Field  string `json:"field"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

func (d Decision) String() string {
	return fmt.Sprintf("harden: %s: %s (%s)", d.Field, d.Action, d.Reason)
}

// HardenConfig is the host's side of the floor, from the policy file.
type HardenConfig struct {
	// Allow is added to every container's run.bulwark.allow.
	Allow []string `json:"allow,omitempty"`
	// PidsLimit is set where the config has no pids limit; 0 means
	// FloorPidsLimit, -1 none.
	PidsLimit int64 `json:"pidsLimit,omitempty"`
	// MemoryLimit is set where the config has no memory limit: a size as
	// --memory takes it ("512m", "2g"), "" for FloorMemoryLimit, or "none".
	MemoryLimit string `json:"memoryLimit,omitempty"`
	// Userns is UsernsAuto ("" too), UsernsOff or UsernsRequire: whether
	// the floor gives a config without a user namespace one
	// (hardenuserns.go).
	Userns string `json:"userns,omitempty"`
}

// MemoryNone in HardenConfig.MemoryLimit leaves a config without a memory limit.
const MemoryNone = "none"

// floorMinMemory is the smallest memoryLimit accepted: below it even the
// container's init and a shell are OOM-killed, which looks like a broken
// runtime rather than a limit.
const floorMinMemory = 6 << 20

// memoryLimit is the limit the floor sets, 0 for none.
func (c HardenConfig) memoryLimit() (int64, error) {
	switch c.MemoryLimit {
	case "":
		return FloorMemoryLimit, nil
	case MemoryNone:
		return 0, nil
	}
	n, err := units.ParseSize(c.MemoryLimit)
	if err != nil {
		return 0, fmt.Errorf("memoryLimit: %w (a size such as 512m or 2g, or %q)", err, MemoryNone)
	}
	if n < floorMinMemory {
		return 0, fmt.Errorf("memoryLimit: %s is below the smallest limit a container starts under, %d MiB", c.MemoryLimit, floorMinMemory>>20)
	}
	return n, nil
}

// PolicyFile is /etc/bulwark/policy.json.
type PolicyFile struct {
	// Harden switches the floor on for every container, as --harden does.
	Harden bool `json:"harden"`
	HardenConfig
}

// LoadPolicyFile reads a policy file. A missing file is no policy (nil, nil):
// most hosts have none. Unknown fields are errors, so a misspelt "harden"
// never leaves an operator believing the floor is on.
func LoadPolicyFile(path string) (*PolicyFile, error) {
	// A policy file another user can change is refused: it could switch
	// the floor off.
	b, err := safefile.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var p PolicyFile
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if p.PidsLimit < -1 {
		return nil, fmt.Errorf("policy %s: pidsLimit: %d is negative (-1 sets no limit)", path, p.PidsLimit)
	}
	if _, err := p.memoryLimit(); err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	switch p.Userns {
	case "", UsernsAuto, UsernsOff, UsernsRequire:
	default:
		return nil, fmt.Errorf("policy %s: userns: %q is none of %s, %s, %s", path, p.Userns, UsernsAuto, UsernsOff, UsernsRequire)
	}
	if _, _, err := hardenParseAllow(p.Allow, "allow"); err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return &p, nil
}

// hardenKeptCaps is the allowlist: Docker's default capability set, the
// most any engine hands a container without being asked. Every other
// capability (DAC_READ_SEARCH, SYS_ADMIN, SYS_MODULE, BPF, ...) is dropped
// unless run.bulwark.allow names it: a denylist misses the next dangerous
// capability, as it missed DAC_READ_SEARCH (the "shocker" escape).
// NET_RAW and MKNOD are Docker defaults the floor has always dropped, so
// they are left out: the allowlist never keeps more than the old floor.
var hardenKeptCaps = slices.DeleteFunc(slices.Clone(DockerDefaultCaps), func(c string) bool {
	return c == "CAP_NET_RAW" || c == "CAP_MKNOD"
})

// hardenCapWhy says why a dropped capability is dangerous in a container;
// capabilities not listed get hardenCapWhyOther.
var hardenCapWhy = map[string]string{
	"CAP_NET_RAW":         "raw and packet sockets: spoofing (ARP, DNS) and sniffing on the container network",
	"CAP_MKNOD":           "creates device nodes; with a lax devices cgroup, the host's disks",
	"CAP_DAC_READ_SEARCH": "open_by_handle_at opens any inode of the host filesystem the rootfs lives on (the shocker escape)",
	"CAP_SYS_ADMIN":       "mount, namespaces, bpf and most of the kernel's privileged interfaces: the usual first step of an escape",
	"CAP_SYS_MODULE":      "loads kernel modules: code in the host kernel",
	"CAP_SYS_PTRACE":      "reads and changes other processes' memory, and follows /proc/PID/root when the pid namespace is shared",
	"CAP_SYS_RAWIO":       "raw I/O ports and /dev/mem: the host's hardware and memory",
	"CAP_SYS_BOOT":        "reboots the host and loads a new kernel with kexec",
	"CAP_SYS_TIME":        "sets the host's clock",
	"CAP_BPF":             "loads eBPF programs: kernel attack surface and reads of kernel memory",
	"CAP_PERFMON":         "perf events over the host: kernel addresses and side channels",
	"CAP_NET_ADMIN":       "configures interfaces, routes and netfilter, and reaches much kernel code written for root",
	"CAP_SYSLOG":          "reads the kernel log and kernel addresses",
	"CAP_MAC_ADMIN":       "changes the host's LSM policy",
	"CAP_MAC_OVERRIDE":    "bypasses the host's LSM policy",
	"CAP_SYS_RESOURCE":    "overrides resource limits and quotas the host set",
	"CAP_AUDIT_CONTROL":   "changes the host's audit rules",
	"CAP_LINUX_IMMUTABLE": "changes immutable and append-only files",
}

const hardenCapWhyOther = "not among the capabilities Docker grants by default, which is all the floor keeps"

// hardenPrivilegedCaps, all in the bounding set, make a config privileged-shaped
// together with no seccomp or an allow-all devices rule. No workload config
// asks for all of them; `docker run --privileged` grants every capability,
// disables seccomp and allows every device.
var hardenPrivilegedCaps = []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_NET_ADMIN"}

// hardenMaskedPaths are added to linux.maskedPaths: kernel memory and addresses
// (kcore, kallsyms, slabinfo help exploits), host-global state other
// containers and the host leak through (keys, timer_list, sched_debug,
// latency_stats), firmware tables, and powercap energy counters (the
// Platypus side channel).
// It holds runc's and Docker's lists (Docker's adds /proc/interrupts), and
// the other two places the interrupt counters leak from.
var hardenMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/kallsyms", "/proc/keys", "/proc/key-users",
	"/proc/latency_stats", "/proc/slabinfo", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap", "/proc/softirqs", "/sys/kernel/irq",
}

// hardenReadonlyPaths are added to linux.readonlyPaths: runc's and
// Docker's list. Without a user namespace container root is host root to
// /proc/sys: kernel/core_pattern runs a program as host root on the next
// crash, vm/drop_caches and the rest change the whole host, and
// sysrq-trigger reboots it.
var hardenReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// Harden raises s to the floor in place and returns what it changed. It is
// an error when s is privileged-shaped and not allowed to be, or when the
// allow annotation names something that is not a capability.
func Harden(s *specs.Spec, cfg HardenConfig) ([]Decision, error) {
	if s == nil || s.Process == nil {
		return nil, &oci.FieldError{File: oci.ConfigFile, Field: "process", Msg: "required to harden a container", Err: oci.ErrInvalidConfig}
	}
	allowCaps, allowWords, err := hardenParseAllow(hardenSplitAllow(s.Annotations[oci.AnnotationAllow]), fmt.Sprintf("annotations[%q]", oci.AnnotationAllow))
	if err != nil {
		return nil, oci.InConfig(err)
	}
	hostCaps, hostWords, _ := hardenParseAllow(cfg.Allow, "allow")
	for c := range hostCaps {
		allowCaps[c] = true
	}
	for w := range hostWords {
		allowWords[w] = true
	}
	allowPriv := allowWords[AllowPrivileged]

	if shape := hardenPrivilegedShape(s); shape != "" {
		if !allowPriv {
			return nil, &oci.FieldError{File: oci.ConfigFile, Field: "process.capabilities", Err: ErrPrivileged,
				Msg: fmt.Sprintf("%s: %v; to run it anyway, annotate %s: %s", shape, ErrPrivileged, oci.AnnotationAllow, AllowPrivileged)}
		}
		return []Decision{{Field: oci.ConfigFile, Action: "left as written",
			Reason: fmt.Sprintf("privileged-shaped (%s) and allowed by %s: %s", shape, oci.AnnotationAllow, AllowPrivileged)}}, nil
	}

	var ds []Decision
	if !s.Process.NoNewPrivileges {
		s.Process.NoNewPrivileges = true
		ds = append(ds, Decision{"process.noNewPrivileges", "set to true",
			"setuid binaries and file capabilities in the image must not raise privileges"})
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Seccomp == nil {
		s.Linux.Seccomp = profiles.Default()
		ds = append(ds, Decision{"linux.seccomp", "set to Bulwark's default profile",
			"the config had no seccomp filter, so every syscall was kernel attack surface"})
	}
	if c := s.Process.Capabilities; c != nil {
		ds = append(ds, hardenCaps(c, allowCaps)...)
	}
	ds = append(ds, hardenSeccompDenials(s.Linux.Seccomp, allowCaps)...)
	ds = append(ds, hardenSysfs(s, allowWords[AllowSysfsRW])...)
	ds = append(ds, hardenPaths(&s.Linux.MaskedPaths, hardenMaskedPaths, "linux.maskedPaths",
		"kernel memory and addresses, host-global state and side channels the container has no use for")...)
	ds = append(ds, hardenPaths(&s.Linux.ReadonlyPaths, hardenReadonlyPaths, "linux.readonlyPaths",
		"host-global kernel settings: /proc/sys/kernel/core_pattern alone runs a program as host root")...)
	if r := s.Linux.Resources; cfg.PidsLimit != -1 && (r == nil || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit <= 0) {
		limit := cfg.PidsLimit
		if limit <= 0 {
			limit = FloorPidsLimit
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
		ds = append(ds, Decision{"linux.resources.pids.limit", fmt.Sprintf("set to %d", limit),
			"without a limit a fork bomb in one container exhausts the host's pids"})
	}
	if d, err := hardenMemory(s.Linux, cfg); err != nil {
		return nil, err
	} else if d != nil {
		ds = append(ds, *d)
	}
	if _, ok := s.Annotations[oci.AnnotationLandlock]; !ok {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[oci.AnnotationLandlock] = landlock.ModeEnforce
		reason := fmt.Sprintf("file access confined to the container's own mounts, with the kernel's Landlock ABI %d", landlock.ABI())
		if landlock.ABI() == 0 {
			reason = "this kernel has no Landlock, so nothing is enforced here; the annotation still states the intent"
		}
		ds = append(ds, Decision{fmt.Sprintf("annotations[%q]", oci.AnnotationLandlock), "set to " + landlock.ModeEnforce, reason})
	}
	return ds, nil
}

// hardenPaths appends to *paths those of want it lacks, in want's order, and
// returns the one Decision for field that names them (none when nothing
// was missing).
func hardenPaths(paths *[]string, want []string, field, why string) []Decision {
	var added []string
	for _, p := range want {
		if !slices.Contains(*paths, p) {
			*paths = append(*paths, p)
			added = append(added, p)
		}
	}
	if len(added) == 0 {
		return nil
	}
	return []Decision{{field, "added " + strings.Join(added, " "), why}}
}

// hardenMemory sets the policy's memory limit where the config has none
// (no linux.resources.memory.limit, or -1, the runtime-spec's unlimited).
// A memory+swap limit the config set below it lowers it to that value:
// the kernel refuses a memory limit above memory+swap.
func hardenMemory(l *specs.Linux, cfg HardenConfig) (*Decision, error) {
	limit, err := cfg.memoryLimit()
	if err != nil {
		return nil, fmt.Errorf("hardening policy: %w", err)
	}
	if limit == 0 {
		return nil, nil
	}
	if l.Resources == nil {
		l.Resources = &specs.LinuxResources{}
	}
	m := l.Resources.Memory
	if m != nil && m.Limit != nil && *m.Limit > 0 {
		return nil, nil
	}
	if m == nil {
		m = &specs.LinuxMemory{}
		l.Resources.Memory = m
	}
	if m.Swap != nil && *m.Swap > 0 && *m.Swap < limit {
		limit = *m.Swap
	}
	m.Limit = &limit
	return &Decision{"linux.resources.memory.limit", fmt.Sprintf("set to %d (%d MiB)", limit, limit>>20),
		"without a limit one container's memory pushes the whole host into its OOM killer, which may pick the engine or sshd; size the container with a memory limit in its config, or change memoryLimit in the policy file"}, nil
}

// hardenCaps drops from all five sets every capability outside
// hardenKeptCaps that allowCaps does not name, and returns a Decision for
// each capability dropped or kept only by the annotation.
func hardenCaps(c *specs.LinuxCapabilities, allowCaps map[string]bool) []Decision {
	var held []string
	for _, set := range hardenCapSets(c) {
		for _, n := range *set.set {
			if !slices.Contains(held, n) {
				held = append(held, n)
			}
		}
	}
	slices.Sort(held)
	var ds []Decision
	for _, n := range held {
		// Engines may write names without CAP_ or in lower case; the
		// allowlist compares the canonical form but drops the name as written.
		canon := oci.CapabilityName(n)
		kept := slices.Contains(hardenKeptCaps, canon)
		if allowCaps[canon] {
			if !kept {
				ds = append(ds, Decision{"process.capabilities", "kept " + canon, fmt.Sprintf("allowed by %s", oci.AnnotationAllow)})
			}
			continue
		}
		if kept {
			continue
		}
		why := hardenCapWhy[canon]
		if why == "" {
			why = hardenCapWhyOther
		}
		if sets := hardenDropCap(c, n); len(sets) > 0 {
			ds = append(ds, Decision{"process.capabilities", fmt.Sprintf("dropped %s from %s", canon, strings.Join(sets, ", ")),
				fmt.Sprintf("%s; to keep it, annotate %s: %s", why, oci.AnnotationAllow, strings.TrimPrefix(canon, "CAP_"))})
		}
	}
	return ds
}

// hardenDeniedSyscalls are refused by the floor whatever the engine's
// profile says, each group with the reason its Decision gives.
// dockerd adds open_by_handle_at to its profile when DAC_READ_SEARCH is
// granted, and with it a file handle opens any inode of the host
// filesystem (shocker); even an annotated DAC_READ_SEARCH keeps its other
// uses. Docker's profile allows ptrace and process_vm_readv/writev to every
// container: a process then reads and changes the memory of any sibling of
// its uid, a runtime process joining the container included. The ptrace
// group stays as the profile says when run.bulwark.allow names SYS_PTRACE,
// the one sign that the container is meant to debug.
var hardenDeniedSyscalls = []struct {
	names   []string
	why     string
	unlessC string
}{
	{[]string{"open_by_handle_at"}, "a file handle opens any inode of the host filesystem the rootfs lives on (the shocker escape)", ""},
	{[]string{"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp"},
		"reads or changes the memory, files or state of another process of the container", "CAP_SYS_PTRACE"},
}

// hardenSeccompDenials takes the denied syscalls out of every rule of sc,
// so they fall to the default action, and where that does not refuse (a
// denylist profile, defaultAction SCMP_ACT_ALLOW) adds a rule refusing
// them with EPERM. Then it refuses TIOCSTI and TIOCLINUX (hardenIoctl).
func hardenSeccompDenials(sc *specs.LinuxSeccomp, allowCaps map[string]bool) []Decision {
	if sc == nil {
		return nil
	}
	var ds []Decision
	for _, g := range hardenDeniedSyscalls {
		if g.unlessC != "" && allowCaps[g.unlessC] {
			continue
		}
		if removed := hardenDenySyscalls(sc, g.names); len(removed) > 0 {
			ds = append(ds, Decision{"linux.seccomp", "denied " + strings.Join(removed, " ") + " with EPERM",
				g.why + "; the engine's profile allowed it"})
		}
	}
	ds = append(ds, hardenNamespaces(sc, allowCaps)...)
	return append(ds, hardenIoctl(sc)...)
}

// cloneNewMask is the namespace flags of clone's first argument (x86-64
// and arm64 order): CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS,
// CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID and CLONE_NEWNET, the mask
// Docker's profile compares.
const cloneNewMask = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC |
	unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// hardenNamespaces refuses new namespaces unless SYS_ADMIN is kept:
// dockerd allows unshare, setns, clone with namespace flags and clone3 only
// to a container granted SYS_ADMIN, and the floor drops that capability,
// but an unprivileged unshare(CLONE_NEWUSER) needs none and hands back a
// full capability set over new namespaces (mounts, netfilter: kernel code
// written for root). So the profile gets what Docker's has without
// SYS_ADMIN: unshare and setns refused, clone allowed only without
// namespace flags, and clone3, whose flags seccomp cannot read, answered
// ENOSYS so that the C library falls back to clone.
func hardenNamespaces(sc *specs.LinuxSeccomp, allowCaps map[string]bool) []Decision {
	if allowCaps["CAP_SYS_ADMIN"] {
		return nil
	}
	var ds []Decision
	if removed := hardenDenySyscalls(sc, []string{"unshare", "setns"}); len(removed) > 0 {
		ds = append(ds, Decision{"linux.seccomp", "denied " + strings.Join(removed, " ") + " with EPERM",
			"a new user namespace gives back every capability over new namespaces; the engine's profile allowed it (as dockerd's does with SYS_ADMIN, which the floor dropped)"})
	}
	var cloneAct, clone3Act specs.LinuxSeccompAction
	kept := sc.Syscalls[:0]
	for _, r := range sc.Syscalls {
		if len(r.Args) == 0 && hardenActionAllows(r.Action) {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool {
				switch n {
				case "clone":
					cloneAct = r.Action
				case "clone3":
					clone3Act = r.Action
				default:
					return false
				}
				return true
			})
			if len(r.Names) == 0 {
				continue
			}
		}
		kept = append(kept, r)
	}
	sc.Syscalls = kept
	eperm, enosys := uint(unix.EPERM), uint(unix.ENOSYS)
	switch {
	case hardenActionAllows(sc.DefaultAction):
		// clone runs by default: refuse it with each namespace flag.
		for bit := uint64(1); bit != 0; bit <<= 1 {
			if cloneNewMask&bit != 0 {
				sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm,
					Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: bit, ValueTwo: bit}}})
			}
		}
		clone3Act = sc.DefaultAction
	case cloneAct != "":
		// Allowed whole: allowed without namespace flags only; the rest
		// falls to the refusing default.
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: cloneAct,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: cloneNewMask, ValueTwo: 0}}})
	}
	if clone3Act != "" {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys})
	}
	if cloneAct != "" || clone3Act != "" {
		ds = append(ds, Decision{"linux.seccomp", "allowed clone only without namespace flags and answered clone3 with ENOSYS",
			"new namespaces need SYS_ADMIN in Docker's profile, which the floor dropped; the C library falls back from clone3 to clone"})
	}
	return ds
}

func hardenDenySyscalls(sc *specs.LinuxSeccomp, denied []string) []string {
	var removed []string
	kept := sc.Syscalls[:0]
	for _, r := range sc.Syscalls {
		names := slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool {
			if slices.Contains(denied, n) {
				if r.Action != specs.ActErrno && !slices.Contains(removed, n) {
					removed = append(removed, n)
				}
				return true
			}
			return false
		})
		if len(names) == 0 {
			continue
		}
		r.Names = names
		kept = append(kept, r)
	}
	sc.Syscalls = kept
	if hardenActionAllows(sc.DefaultAction) {
		// What falls through to the default is not refused.
		eperm := uint(unix.EPERM)
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: slices.Clone(denied), Action: specs.ActErrno, ErrnoRet: &eperm})
		removed = denied
	}
	return removed
}

// hardenActionAllows reports whether a syscall given action a runs.
func hardenActionAllows(a specs.LinuxSeccompAction) bool {
	switch a {
	case specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActNotify:
		return true
	}
	return false
}

// hardenIoctl refuses TIOCSTI (pushes input into a terminal: a shell
// outside the container when it shares the tty) and TIOCLINUX (the same on
// a virtual console) where the profile lets ioctl run, as Bulwark's default
// profile does: the command is compared as args[1] & 0xffffffff, because
// the kernel ignores the upper half. libseccomp drops the conditional rules
// of a syscall that also has an unconditional one, so an unconditional
// ioctl allow becomes "args[1] >= 0" (always true) with the same action.
// Under Docker's defaultAction (EPERM) the denials equal the default, and
// the loader keeps them because the allow beside them would otherwise
// decide (pkg/seccomp, standin.go).
func hardenIoctl(sc *specs.LinuxSeccomp) []Decision {
	var allowAct specs.LinuxSeccompAction
	kept := sc.Syscalls[:0]
	for _, r := range sc.Syscalls {
		if len(r.Args) == 0 && slices.Contains(r.Names, "ioctl") {
			if !hardenActionAllows(r.Action) {
				// ioctl is refused whole; nothing to add.
				return nil
			}
			if allowAct == "" {
				allowAct = r.Action
			}
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return n == "ioctl" })
			if len(r.Names) == 0 {
				continue
			}
		}
		kept = append(kept, r)
	}
	sc.Syscalls = kept
	conditional := slices.ContainsFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool {
		return slices.Contains(r.Names, "ioctl") && hardenActionAllows(r.Action)
	})
	if allowAct == "" && !conditional && !hardenActionAllows(sc.DefaultAction) {
		return nil // ioctl falls to a refusing default
	}
	errno := unix.EPERM
	var added int
	for _, cmd := range []uint64{unix.TIOCSTI, unix.TIOCLINUX} {
		cond := specs.LinuxSeccompArg{Index: 1, Op: specs.OpMaskedEqual, Value: 0xffffffff, ValueTwo: cmd}
		if slices.ContainsFunc(sc.Syscalls, func(r specs.LinuxSyscall) bool {
			return slices.Contains(r.Names, "ioctl") && !hardenActionAllows(r.Action) && slices.Equal(r.Args, []specs.LinuxSeccompArg{cond})
		}) {
			continue // the profile refuses it already, as Bulwark's default does
		}
		added++
		e := uint(errno)
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno, ErrnoRet: &e,
			Args: []specs.LinuxSeccompArg{cond}})
	}
	if added == 0 && allowAct == "" {
		return nil
	}
	if allowAct != "" {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: allowAct,
			Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpGreaterEqual, Value: 0}}})
	}
	return []Decision{{"linux.seccomp", fmt.Sprintf("denied ioctl TIOCSTI and TIOCLINUX with %s", unix.ErrnoName(errno)),
		"they push input into a terminal, a shell outside the container when it shares the tty; the engine's profile allowed every ioctl"}}
}

// hardenSysfs makes every sysfs mount, and every bind of the host's /sys
// or a directory below it, read-only unless allowed. Without a user
// namespace container root owns the host's sysfs attributes, and many
// change kernel state for the whole host (transparent_hugepage, power,
// module parameters, device settings).
func hardenSysfs(s *specs.Spec, allowed bool) []Decision {
	var ds []Decision
	for i := range s.Mounts {
		m := &s.Mounts[i]
		isSysfs := m.Type == "sysfs"
		isBind := slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") || m.Type == "bind"
		if !isSysfs && !(isBind && (m.Source == "/sys" || strings.HasPrefix(m.Source, "/sys/"))) {
			continue
		}
		// A bind of the host's /sys brings its submounts (cgroup
		// hierarchies with their release_agent, debugfs, securityfs), which
		// only the recursive rro makes read-only.
		rec := isBind && !isSysfs
		if slices.Contains(m.Options, "ro") && !slices.Contains(m.Options, "rw") &&
			(!rec || slices.Contains(m.Options, "rro") && !slices.Contains(m.Options, "rrw")) {
			continue
		}
		field := fmt.Sprintf("mounts[%d] (%s)", i, m.Destination)
		if allowed {
			ds = append(ds, Decision{field, "left read-write", fmt.Sprintf("allowed by %s: %s", oci.AnnotationAllow, AllowSysfsRW)})
			continue
		}
		m.Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "rw" || o == "rrw" }), "ro")
		if rec {
			m.Options = append(m.Options, "rro")
		}
		ds = append(ds, Decision{field, "made read-only",
			fmt.Sprintf("host sysfs attributes change kernel state for the whole host; to keep it writable, annotate %s: %s", oci.AnnotationAllow, AllowSysfsRW)})
	}
	return ds
}

// hardenPrivilegedShape describes why s looks like `--privileged`, or is "".
func hardenPrivilegedShape(s *specs.Spec) string {
	c := s.Process.Capabilities
	if c == nil {
		return ""
	}
	for _, p := range hardenPrivilegedCaps {
		if !slices.Contains(c.Bounding, p) {
			return ""
		}
	}
	noSeccomp := s.Linux == nil || s.Linux.Seccomp == nil
	allDevices := false
	if s.Linux != nil && s.Linux.Resources != nil {
		for _, d := range s.Linux.Resources.Devices {
			if d.Allow && (d.Type == "" || d.Type == "a") && d.Major == nil && d.Minor == nil && strings.Contains(d.Access, "r") && strings.Contains(d.Access, "w") && strings.Contains(d.Access, "m") {
				allDevices = true
			}
		}
	}
	var why []string
	if noSeccomp {
		why = append(why, "no linux.seccomp")
	}
	if allDevices {
		why = append(why, `every device allowed ("a *:* rwm")`)
	}
	if len(why) == 0 {
		return ""
	}
	return fmt.Sprintf("bounding set holds %s with %s", strings.Join(hardenPrivilegedCaps, ", "), strings.Join(why, " and "))
}

func hardenSplitAllow(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// hardenParseAllow normalises names to CAP_X and rejects unknown ones: a typo in
// an opt-out must not be silently ignored any more than in the config. The
// second map holds the keywords (AllowPrivileged, AllowSysfsRW) named.
func hardenParseAllow(names []string, field string) (map[string]bool, map[string]bool, error) {
	out := map[string]bool{}
	words := map[string]bool{}
	for _, n := range names {
		if w := strings.ToLower(n); w == AllowPrivileged || w == AllowSysfsRW || w == AllowHostUsers {
			words[w] = true
			continue
		}
		c := oci.CapabilityName(n)
		if !oci.IsKnownCapability(c) {
			return nil, nil, &oci.FieldError{Field: field, Msg: fmt.Sprintf("%q is neither a capability nor %q, %q or %q", n, AllowPrivileged, AllowSysfsRW, AllowHostUsers), Err: oci.ErrInvalidConfig}
		}
		out[c] = true
	}
	return out, words, nil
}

func hardenCapSets(c *specs.LinuxCapabilities) []struct {
	name string
	set  *[]string
} {
	return []struct {
		name string
		set  *[]string
	}{
		{"bounding", &c.Bounding}, {"effective", &c.Effective}, {"permitted", &c.Permitted},
		{"inheritable", &c.Inheritable}, {"ambient", &c.Ambient},
	}
}

// hardenDropCap removes name from every set and returns the sets it was in.
func hardenDropCap(c *specs.LinuxCapabilities, name string) []string {
	var from []string
	for _, s := range hardenCapSets(c) {
		if slices.Contains(*s.set, name) {
			*s.set = slices.DeleteFunc(*s.set, func(x string) bool { return x == name })
			from = append(from, s.name)
		}
	}
	return from
}
