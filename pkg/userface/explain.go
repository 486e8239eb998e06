package userface

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// PrivilegedSyscall is a syscall that seccomp may allow but that still
// needs a capability for the common case a person hits.
type PrivilegedSyscall struct {
	Cap  string // CAP_ name
	When string // the case that needs it, and what the program sees without it
}

// privilegedSyscalls answers "seccomp allows it, so why EPERM?": seccomp is
// only one of the checks, and a capability-free profile fails these calls
// in the kernel's own permission check.
var privilegedSyscalls = map[string]PrivilegedSyscall{
	"chown":              {"CAP_CHOWN", "chown of a file you do not own, or to another owner, fails with EPERM"},
	"fchown":             {"CAP_CHOWN", "chown of a file you do not own, or to another owner, fails with EPERM"},
	"lchown":             {"CAP_CHOWN", "chown of a file you do not own, or to another owner, fails with EPERM"},
	"fchownat":           {"CAP_CHOWN", "chown of a file you do not own, or to another owner, fails with EPERM"},
	"chmod":              {"CAP_FOWNER", "chmod of a file you do not own fails with EPERM"},
	"fchmod":             {"CAP_FOWNER", "chmod of a file you do not own fails with EPERM"},
	"fchmodat":           {"CAP_FOWNER", "chmod of a file you do not own fails with EPERM"},
	"mknod":              {"CAP_MKNOD", "making a device node fails with EPERM"},
	"mknodat":            {"CAP_MKNOD", "making a device node fails with EPERM"},
	"mount":              {"CAP_SYS_ADMIN", "mounting fails with EPERM"},
	"umount2":            {"CAP_SYS_ADMIN", "unmounting fails with EPERM"},
	"pivot_root":         {"CAP_SYS_ADMIN", "fails with EPERM"},
	"sethostname":        {"CAP_SYS_ADMIN", "fails with EPERM"},
	"setdomainname":      {"CAP_SYS_ADMIN", "fails with EPERM"},
	"setuid":             {"CAP_SETUID", "changing to another uid fails with EPERM"},
	"setreuid":           {"CAP_SETUID", "changing to another uid fails with EPERM"},
	"setresuid":          {"CAP_SETUID", "changing to another uid fails with EPERM"},
	"setfsuid":           {"CAP_SETUID", "changing to another uid has no effect"},
	"setgid":             {"CAP_SETGID", "changing to another gid fails with EPERM"},
	"setregid":           {"CAP_SETGID", "changing to another gid fails with EPERM"},
	"setresgid":          {"CAP_SETGID", "changing to another gid fails with EPERM"},
	"setgroups":          {"CAP_SETGID", "fails with EPERM"},
	"chroot":             {"CAP_SYS_CHROOT", "fails with EPERM"},
	"kill":               {"CAP_KILL", "signalling another user's process fails with EPERM"},
	"bind":               {"CAP_NET_BIND_SERVICE", "binding a port below ip_unprivileged_port_start fails with EACCES"},
	"socket":             {"CAP_NET_RAW", "a raw or packet socket fails with EPERM"},
	"mlock":              {"CAP_IPC_LOCK", "locking more than RLIMIT_MEMLOCK fails with EPERM/ENOMEM"},
	"mlockall":           {"CAP_IPC_LOCK", "locking more than RLIMIT_MEMLOCK fails with EPERM/ENOMEM"},
	"ptrace":             {"CAP_SYS_PTRACE", "tracing another user's process fails with EPERM"},
	"setpriority":        {"CAP_SYS_NICE", "raising priority fails with EACCES"},
	"sched_setscheduler": {"CAP_SYS_NICE", "a real-time policy fails with EPERM"},
	"setrlimit":          {"CAP_SYS_RESOURCE", "raising a hard limit fails with EPERM"},
	"prlimit64":          {"CAP_SYS_RESOURCE", "raising a hard limit fails with EPERM"},
	"settimeofday":       {"CAP_SYS_TIME", "fails with EPERM (and the clock is the host's)"},
	"clock_settime":      {"CAP_SYS_TIME", "fails with EPERM (and the clock is the host's)"},
	"setxattr":           {"CAP_SYS_ADMIN", "a trusted.* or security.* attribute fails with EPERM"},
	"capset":             {"CAP_SETPCAP", "adding to the inheritable set fails with EPERM"},
}

// SyscallCapability returns the capability a privileged syscall needs,
// and whether name is one the table knows.
func SyscallCapability(name string) (PrivilegedSyscall, bool) {
	p, ok := privilegedSyscalls[name]
	return p, ok
}

// capUses says what a capability lets a container's root do, for the CAP
// form of explain.
var capUses = map[string]string{
	"CAP_CHOWN":            "change the owner of any file (nginx and postgres chown their directories)",
	"CAP_DAC_OVERRIDE":     "read and write files regardless of their permission bits",
	"CAP_FOWNER":           "chmod and utime files it does not own",
	"CAP_FSETID":           "keep setuid/setgid bits when writing a file",
	"CAP_KILL":             "signal processes of other users",
	"CAP_SETUID":           "switch to other uids (su, daemons dropping privileges)",
	"CAP_SETGID":           "switch to other gids and set supplementary groups",
	"CAP_SETPCAP":          "change capability sets",
	"CAP_NET_BIND_SERVICE": "bind ports below 1024",
	"CAP_NET_RAW":          "open raw and packet sockets (ping, packet capture)",
	"CAP_NET_ADMIN":        "configure interfaces, routes and firewall of the container's own network namespace",
	"CAP_SYS_CHROOT":       "chroot",
	"CAP_MKNOD":            "create device nodes (the devices cgroup still decides which open)",
	"CAP_AUDIT_WRITE":      "write to the kernel audit log",
	"CAP_SETFCAP":          "set file capabilities",
	"CAP_IPC_LOCK":         "lock memory (databases' shared buffers)",
	"CAP_SYS_ADMIN":        "mount and much else: no profile grants it",
	"CAP_SYS_PTRACE":       "trace other processes",
	"CAP_SYS_NICE":         "raise priorities and use real-time scheduling",
	"CAP_SYS_RESOURCE":     "raise hard resource limits",
	"CAP_SYS_TIME":         "set the clock",
}

// Explain answers what profile does to what: a syscall name, an absolute
// PATH inside the container, or a capability (CAP_CHOWN or CHOWN). It
// reads the whole profile (capabilities, mounts, masked and read-only
// paths, devices, Landlock, seccomp), since seccomp alone would say
// "allowed" for a call the missing capability then fails.
func Explain(profile, what string) ([]string, error) {
	if profile == "" {
		profile = "default"
	}
	s, err := profileSpec(profile)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w", profile, err)
	}
	switch {
	case strings.HasPrefix(what, "/"):
		return explainPath(s, profile, filepath.Clean(what)), nil
	case isCapName(what):
		c, _ := policy.CapName(what)
		return explainCap(c, profile)
	case seccomp.KnownSyscall(what):
		return explainSyscall(s, profile, what), nil
	}
	return nil, fmt.Errorf("%q is not a syscall, an absolute path or a capability (e.g. chown, /tmp, CAP_CHOWN)", what)
}

// isCapName takes CAP_X in any case, or X in upper case: chown and kill
// are syscalls, CHOWN and KILL capabilities.
func isCapName(what string) bool {
	if _, err := policy.CapName(what); err != nil {
		return false
	}
	return strings.HasPrefix(strings.ToUpper(what), "CAP_") || strings.ToUpper(what) == what
}

func hasCap(s *specs.Spec, c string) bool {
	return s.Process != nil && s.Process.Capabilities != nil && slices.Contains(s.Process.Capabilities.Effective, c)
}

// CapabilityCaveat is the line to add after seccomp's verdict on name
// under s: empty when the syscall needs no capability or s grants it.
func CapabilityCaveat(s *specs.Spec, profile, name string) string {
	p, ok := privilegedSyscalls[name]
	if !ok || hasCap(s, p.Cap) {
		return ""
	}
	short := strings.TrimPrefix(p.Cap, "CAP_")
	fix := "--cap-add " + short
	if grants := profilesGranting(p.Cap); len(grants) > 0 {
		fix += " or --profile " + strings.Join(grants, "/")
	}
	return fmt.Sprintf("but the %s profile has no %s: %s; %s", profile, p.Cap, p.When, fix)
}

func explainSyscall(s *specs.Spec, profile, name string) []string {
	var sc *specs.LinuxSeccomp
	if s.Linux != nil {
		sc = s.Linux.Seccomp
	}
	r := explain.Evaluate(sc, name, [6]uint64{})
	scName, reasons := builtinSeccomp(sc)
	if reasons == nil {
		reasons = learnedReasons(profile)
	}
	out := []string{fmt.Sprintf("seccomp (%s profile): %s %s %s", profile, name, r.Outcome(), r.Why(reasons))}
	if len(r.Conds) > 0 && scName != "" {
		out[0] += fmt.Sprintf(" (for all-zero arguments; `bulwark seccomp explain %s %s ARG...` for others)", scName, name)
	}
	if r.Action == specs.ActAllow || r.Action == specs.ActLog {
		if c := CapabilityCaveat(s, profile, name); c != "" {
			out = append(out, "capabilities: "+c)
		} else if p, ok := privilegedSyscalls[name]; ok {
			out = append(out, fmt.Sprintf("capabilities: the %s profile grants %s, within the container's user namespace", profile, p.Cap))
		}
	}
	if len(out) == 1 && strings.Contains(r.Outcome(), "SIGSYS") {
		out = append(out, "a program that makes this call dies with exit 159; use a profile whose seccomp allows it (bulwark explain --profile default "+name+")")
	}
	return out
}

// builtinSeccomp names the built-in seccomp profile sc is, with its
// per-rule reasons; "" and nil for another.
func builtinSeccomp(sc *specs.LinuxSeccomp) (string, []string) {
	for _, n := range profiles.Names() {
		if b, reasons, err := profiles.Resolve(n); err == nil && reflect.DeepEqual(b, sc) {
			return n, reasons
		}
	}
	return "", nil
}

// under reports whether p is dir or beneath it.
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func explainPath(s *specs.Spec, profile, p string) []string {
	var out []string
	if s.Linux != nil {
		for _, m := range s.Linux.MaskedPaths {
			if under(p, m) {
				out = append(out, fmt.Sprintf("%s is masked by the %s profile (%s reads as empty): it leaks host data; no flag unmasks it", p, profile, m))
			}
		}
		for _, r := range s.Linux.ReadonlyPaths {
			if under(p, r) {
				out = append(out, fmt.Sprintf("%s is read-only (%s is remounted read-only): writes fail with EROFS", p, r))
			}
		}
	}
	mnt := mountOf(s, p)
	switch {
	case mnt != nil:
		rw := "writable"
		switch {
		case slices.Contains(mnt.Options, "ro"):
			rw = "read-only (EROFS on writes)"
		case mnt.Destination == "/dev":
			// The runtime makes its nodes, then remounts /dev read-only.
			rw = "read-only once the runtime has made its nodes"
		case mnt.Type == "proc" || mnt.Type == "sysfs":
			rw = "the kernel's own permission checks apply"
		}
		line := fmt.Sprintf("%s is on the container's %s mount at %s: %s", p, mnt.Type, mnt.Destination, rw)
		if slices.Contains(mnt.Options, "noexec") {
			line += ", noexec (running a program from it fails with EACCES; --tmpfs " + mnt.Destination + ":exec, or --profile dev for /tmp)"
		}
		out = append(out, line)
	case s.Root != nil && s.Root.Readonly:
		out = append(out, fmt.Sprintf("%s is on the rootfs, read-only under the %s profile: writes fail with EROFS (\"Read-only file system\"); --writable, --tmpfs DIR or -v SRC:DIR for a writable place", p, profile))
	default:
		out = append(out, fmt.Sprintf("%s is on the rootfs, writable under the %s profile", p, profile))
	}
	if under(p, "/dev") && p != "/dev" && p != "/dev/pts" && p != "/dev/shm" && p != "/dev/mqueue" {
		out = append(out, explainDevice(s, p))
	}
	if s.Annotations[oci.AnnotationLandlock] == landlock.ModeEnforce {
		out = append(out, "landlock: only paths on the container's own mounts are reachable; a host file reached any other way is refused with EACCES")
		if l := explainWritable(s, p); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// defaultNodes are the nodes every container has (pkg/container makes them).
var defaultNodes = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/console"}

func explainDevice(s *specs.Spec, p string) string {
	if slices.Contains(defaultNodes, p) || strings.HasPrefix(p, "/dev/pts/") {
		return p + " is one of the default device nodes every container has"
	}
	if s.Linux != nil {
		for _, d := range s.Linux.Devices {
			if d.Path == p {
				return p + " is given by the profile, allowed by the devices cgroup"
			}
		}
	}
	return fmt.Sprintf("%s is not a device of this container: the devices cgroup denies it, and /dev is read-only (mknod fails); --device %s gives the host's node", p, p)
}

func explainCap(c, profile string) ([]string, error) {
	var out []string
	if use, ok := capUses[c]; ok {
		out = append(out, fmt.Sprintf("%s lets the container's root %s", c, use))
	}
	grants := profilesGranting(c)
	if len(grants) == 0 {
		out = append(out, "no profile grants it")
	} else {
		out = append(out, "granted by the profiles: "+strings.Join(grants, ", "))
	}
	if slices.Contains(grants, profile) {
		out = append(out, fmt.Sprintf("the %s profile has it", profile))
	} else {
		out = append(out, fmt.Sprintf("the %s profile does not; --cap-add %s adds it to this run's bounding, permitted and effective sets (only over what the container's user namespace owns, never the host's)", profile, strings.TrimPrefix(c, "CAP_")))
	}
	return out, nil
}

// profilesGranting lists the profiles whose process has c, in name order.
func profilesGranting(c string) []string {
	var out []string
	for _, n := range policy.ProfileNames() {
		s, err := policy.Spec(n)
		if err != nil {
			continue // gpu and rawdisk need devices; they add none
		}
		if hasCap(s, c) {
			out = append(out, n)
		}
	}
	return out
}
