package oci

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

	"github.com/bulwark-sec/bulwark/pkg/sched"
)

// SeccompValidator checks linux.seccomp without touching the kernel;
// seccomp.Validate is the one to pass. It is an argument, not an import, so
// that loading a config needs neither cgo nor libseccomp, and it is not a
// package variable set from an init function, because then every binary that
// forgot to link pkg/seccomp would skip the check without a word. Problems
// are returned as *FieldError (several joined with errors.Join), with Field
// the path from the config root ("linux.seccomp.syscalls[3].names[0]").
type SeccompValidator func(*specs.LinuxSeccomp) error

// ErrNoSeccompValidator is returned for a config with a linux.seccomp section
// when the caller passed no SeccompValidator: the profile cannot be checked,
// and accepting it unchecked is what this error exists to prevent.
var ErrNoSeccompValidator = errors.New("linux.seccomp: no seccomp validator was given, refusing to accept the profile unchecked")

// Validate checks s, the config of the bundle at bundle, against the
// runtime-spec rules and the rules of the Linux kernel interfaces it will be
// applied with; linux.seccomp is checked by seccomp, which must not be nil
// when the config has that section. It returns the first problem found as a
// *FieldError wrapping ErrInvalidConfig; checks run in the order of the
// file's top-level fields so that "first" matches what a reader of the file
// meets first.
func Validate(s *specs.Spec, bundle string, seccomp SeccompValidator) error {
	_, err := validate(s, bundle, seccomp)
	return err
}

// RootfsPath resolves root.path: relative paths are relative to the bundle
// directory (not to the runtime's working directory, which the runtime
// changes). The result is absolute whenever the bundle path can be made
// absolute, so later chdirs cannot change what it names.
func RootfsPath(bundle string, s *specs.Spec) string {
	if s == nil || s.Root == nil {
		return ""
	}
	p := s.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

type validator struct {
	s       *specs.Spec
	bundle  string
	seccomp SeccompValidator
	warns   []string
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{File: ConfigFile, Field: field, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidConfig}
}

func (v *validator) warn(format string, args ...any) {
	v.warns = append(v.warns, ConfigFile+": "+fmt.Sprintf(format, args...))
}

func validate(s *specs.Spec, bundle string, seccomp SeccompValidator) ([]string, error) {
	if s == nil {
		return nil, &FieldError{File: ConfigFile, Msg: "no configuration", Err: ErrInvalidConfig}
	}
	v := &validator{s: s, bundle: bundle, seccomp: seccomp}
	checks := []func() error{
		v.version,
		v.root,
		v.process,
		v.uts,
		v.mounts,
		v.hooks,
		v.annotations,
		v.linux,
		v.otherPlatforms,
	}
	for _, c := range checks {
		if err := c(); err != nil {
			return v.warns, err
		}
	}
	return v.warns, nil
}

// parseSemver accepts MAJOR.MINOR.PATCH with an optional pre-release or
// build-metadata suffix ("1.0.2-dev"), as runc's `spec` writes them.
func parseSemver(s string) (major, minor, patch int, ok bool) {
	core := s
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		if i == len(core)-1 {
			return 0, 0, 0, false
		}
		core = core[:i]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return 0, 0, 0, false
		}
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return 0, 0, 0, false
		}
		n[i] = x
	}
	return n[0], n[1], n[2], true
}

func (v *validator) version() error {
	ver := v.s.Version
	if ver == "" {
		return fieldErr("ociVersion", "missing; set it to the runtime-spec version the config was written for (e.g. %q)", specs.Version)
	}
	major, minor, _, ok := parseSemver(ver)
	if !ok {
		return fieldErr("ociVersion", "%q is not a semantic version (MAJOR.MINOR.PATCH)", ver)
	}
	if major != specs.VersionMajor {
		return fieldErr("ociVersion", "version %q is not supported: bulwark implements runtime-spec 1.0.0 through %s", ver, specs.Version)
	}
	if minor > specs.VersionMinor {
		v.warn("ociVersion %q is newer than %s, the newest version bulwark knows; properties added since are ignored", ver, specs.Version)
	}
	return nil
}

func (v *validator) root() error {
	r := v.s.Root
	if r == nil {
		return fieldErr("root", "missing; a Linux container needs a root filesystem (root.path)")
	}
	if r.Path == "" {
		return fieldErr("root.path", "empty; give the rootfs directory, absolute or relative to the bundle")
	}
	if strings.IndexByte(r.Path, 0) >= 0 {
		return fieldErr("root.path", "contains a NUL byte")
	}
	p := RootfsPath(v.bundle, v.s)
	st, err := os.Stat(p)
	if err != nil {
		return &FieldError{File: ConfigFile, Field: "root.path", Msg: fmt.Sprintf("%q (resolved to %s): %v", r.Path, p, errors.Unwrap(err)),
			Err: fmt.Errorf("%w: %w", ErrInvalidConfig, err)}
	}
	if !st.IsDir() {
		return fieldErr("root.path", "%q (resolved to %s) is not a directory", r.Path, p)
	}
	return nil
}

func noNUL(field, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fieldErr(field, "contains a NUL byte, which the kernel would treat as the end of the string")
	}
	return nil
}

func absPath(field, p string) error {
	if p == "" {
		return fieldErr(field, "empty; an absolute path is required")
	}
	if err := noNUL(field, p); err != nil {
		return err
	}
	if !filepath.IsAbs(p) {
		return fieldErr(field, "%q is not an absolute path", p)
	}
	return nil
}

// rlimits maps the spec's rlimit names to the kernel's resource numbers.
var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// RlimitResource returns the resource number of a process.rlimits type.
func RlimitResource(name string) (int, bool) {
	r, ok := rlimits[name]
	return r, ok
}

func (v *validator) process() error {
	p := v.s.Process
	if p == nil {
		// Optional for create; the lifecycle code requires it for start.
		return nil
	}
	if len(p.Args) == 0 {
		return fieldErr("process.args", "empty; give at least the program to run")
	}
	for i, a := range p.Args {
		if err := noNUL(fmt.Sprintf("process.args[%d]", i), a); err != nil {
			return err
		}
	}
	if p.Cwd == "" {
		return fieldErr("process.cwd", "missing; give the working directory as an absolute path inside the container (e.g. \"/\")")
	}
	if err := absPath("process.cwd", p.Cwd); err != nil {
		return err
	}
	for i, e := range p.Env {
		f := fmt.Sprintf("process.env[%d]", i)
		if err := noNUL(f, e); err != nil {
			return err
		}
		name, _, ok := strings.Cut(e, "=")
		if !ok {
			return fieldErr(f, "%s has no '='; entries must be NAME=value", truncQuote(e))
		}
		if name == "" {
			return fieldErr(f, "%s has an empty variable name", truncQuote(e))
		}
	}
	if err := v.capabilities(p.Capabilities); err != nil {
		return err
	}
	seen := map[string]int{}
	for i, rl := range p.Rlimits {
		f := fmt.Sprintf("process.rlimits[%d]", i)
		if _, ok := rlimits[rl.Type]; !ok {
			return fieldErr(f+".type", "unknown rlimit type %s (known: RLIMIT_AS, RLIMIT_CORE, ... see getrlimit(2))", truncQuote(rl.Type))
		}
		if j, dup := seen[rl.Type]; dup {
			return fieldErr(f+".type", "duplicate rlimit %q (also process.rlimits[%d])", rl.Type, j)
		}
		seen[rl.Type] = i
		if rl.Soft > rl.Hard {
			return fieldErr(f+".soft", "soft limit %d exceeds hard limit %d", rl.Soft, rl.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fieldErr("process.oomScoreAdj", "%d is outside the kernel's range -1000..1000", *p.OOMScoreAdj)
	}
	if p.ApparmorProfile != "" {
		return fieldErr("process.apparmorProfile", "AppArmor is not supported by bulwark (see `bulwark features`); refusing to run without the requested profile %q", p.ApparmorProfile)
	}
	if p.SelinuxLabel != "" {
		return fieldErr("process.selinuxLabel", "SELinux is not supported by bulwark (see `bulwark features`); refusing to run without the requested label %q", p.SelinuxLabel)
	}
	if err := scheduler(p.Scheduler); err != nil {
		return err
	}
	if a := p.ExecCPUAffinity; a != nil {
		for _, f := range []struct{ name, list string }{{"initial", a.Initial}, {"final", a.Final}} {
			if f.list == "" {
				continue
			}
			if set, err := sched.ParseList(f.list); err != nil {
				return fieldErr("process.execCPUAffinity."+f.name, "%v", err)
			} else if set.Count() == 0 {
				return fieldErr("process.execCPUAffinity."+f.name, "names no CPU")
			}
		}
	}
	if io := p.IOPriority; io != nil {
		switch io.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			return fieldErr("process.ioPriority.class", "unknown class %q (IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			return fieldErr("process.ioPriority.priority", "%d is outside 0..7", io.Priority)
		}
	}
	return nil
}

func (v *validator) capabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	sets := []struct {
		name string
		caps []string
	}{
		{"bounding", c.Bounding}, {"effective", c.Effective}, {"inheritable", c.Inheritable},
		{"permitted", c.Permitted}, {"ambient", c.Ambient},
	}
	for _, set := range sets {
		for i, name := range set.caps {
			if IsKnownCapability(name) {
				continue
			}
			f := fmt.Sprintf("process.capabilities.%s[%d]", set.name, i)
			if guess := CapabilityName(name); IsKnownCapability(guess) {
				return fieldErr(f, "unknown capability %s; did you mean %q?", truncQuote(name), guess)
			}
			return fieldErr(f, "unknown capability %s (see capabilities(7) or `bulwark features`)", truncQuote(name))
		}
	}
	// The kernel raises an ambient capability only when it is both permitted
	// and inheritable; the init leaves the others out, and says so here as
	// runc does (in runc's words, which its own tests match).
	for i, name := range c.Ambient {
		if !slices.Contains(c.Permitted, name) || !slices.Contains(c.Inheritable, name) {
			v.warn("process.capabilities.ambient[%d]: can't raise ambient capability %s: it is not in both process.capabilities.permitted and inheritable; running without it", i, name)
		}
	}
	return nil
}

func scheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	switch s.Policy {
	case specs.SchedOther, specs.SchedFIFO, specs.SchedRR, specs.SchedBatch, specs.SchedISO, specs.SchedIdle, specs.SchedDeadline:
	case "":
		return fieldErr("process.scheduler.policy", "missing")
	default:
		return fieldErr("process.scheduler.policy", "unknown policy %q", s.Policy)
	}
	if (s.Policy == specs.SchedOther || s.Policy == specs.SchedBatch) && (s.Nice < -20 || s.Nice > 19) {
		return fieldErr("process.scheduler.nice", "%d is outside -20..19", s.Nice)
	}
	if s.Priority != 0 && s.Policy != specs.SchedFIFO && s.Policy != specs.SchedRR {
		return fieldErr("process.scheduler.priority", "only SCHED_FIFO and SCHED_RR take a priority, policy is %s", s.Policy)
	}
	if s.Policy != specs.SchedDeadline && (s.Runtime != 0 || s.Deadline != 0 || s.Period != 0) {
		return fieldErr("process.scheduler", "runtime, deadline and period apply only to SCHED_DEADLINE, policy is %s", s.Policy)
	}
	for i, f := range s.Flags {
		switch f {
		case specs.SchedFlagResetOnFork, specs.SchedFlagReclaim, specs.SchedFlagDLOverrun, specs.SchedFlagKeepPolicy,
			specs.SchedFlagKeepParams, specs.SchedFlagUtilClampMin, specs.SchedFlagUtilClampMax:
		default:
			return fieldErr(fmt.Sprintf("process.scheduler.flags[%d]", i), "unknown flag %q", f)
		}
	}
	return nil
}

// uts enforces that hostname and domainname are only set inside a UTS
// namespace of the container's own; otherwise sethostname(2) would rename
// the host.
func (v *validator) uts() error {
	for _, f := range []struct{ name, val string }{{"hostname", v.s.Hostname}, {"domainname", v.s.Domainname}} {
		if f.val == "" {
			continue
		}
		if err := noNUL(f.name, f.val); err != nil {
			return err
		}
		if len(f.val) > 64 {
			return fieldErr(f.name, "%d bytes long, the kernel allows at most 64", len(f.val))
		}
		if !HasNamespace(v.s, specs.UTSNamespace) {
			return fieldErr(f.name, "set, but linux.namespaces has no \"uts\" entry; without a UTS namespace it would change the host's %s", f.name)
		}
	}
	return nil
}

func (v *validator) mounts() error {
	for i, m := range v.s.Mounts {
		f := fmt.Sprintf("mounts[%d]", i)
		if m.Destination == "" {
			return fieldErr(f+".destination", "empty; give the mount point inside the container as an absolute path")
		}
		for _, s := range []struct{ field, val string }{{".destination", m.Destination}, {".source", m.Source}, {".type", m.Type}} {
			if err := noNUL(f+s.field, s.val); err != nil {
				return err
			}
		}
		if !filepath.IsAbs(m.Destination) {
			// runtime-spec 1.1 allows this for compatibility and runc
			// accepts it, so it is only deprecated, not invalid.
			v.warn("%s.destination: %q is relative; it is deprecated and taken as relative to /", f, m.Destination)
		}
		for j, o := range m.Options {
			of := fmt.Sprintf("%s.options[%d]", f, j)
			if o == "" {
				return fieldErr(of, "empty mount option")
			}
			if err := noNUL(of, o); err != nil {
				return err
			}
		}
		po, err := ParseMountOptions(m.Options)
		if err != nil {
			return &FieldError{File: ConfigFile, Field: f + ".options", Msg: err.Error(), Err: err}
		}
		bind := po.IsBind()
		if bind && m.Source == "" {
			return fieldErr(f+".source", "empty; a bind mount needs the path to bind")
		}
		if bind && po.Data != "" {
			// runc and crun accept these and the runtime-tools suite mounts
			// with them; they loosen nothing, so warn rather than refuse.
			v.warn("%s.options: filesystem-specific options %q on a bind mount are ignored by the kernel", f, po.Data)
		}
		if !bind && m.Type == "" && po.Flags&unix.MS_REMOUNT == 0 {
			return fieldErr(f+".type", "empty; give the filesystem type (e.g. \"tmpfs\"), or add the \"bind\" or \"rbind\" option for a bind mount")
		}
		if po.IsIDMapped() || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			if !bind {
				return fieldErr(f+".options", "id-mapped mounts (\"idmap\"/\"ridmap\" or uidMappings/gidMappings) must be bind mounts; add \"bind\" or \"rbind\"")
			}
			// "idmap"/"ridmap" without mappings take the container's user
			// namespace mapping (runc ≥ 1.2); mappings without either are an
			// "idmap" mount (runtime-spec 1.1).
			implied := len(m.UIDMappings) == 0 && len(m.GIDMappings) == 0
			switch {
			case implied && !HasNamespace(v.s, specs.UserNamespace):
				return fieldErr(f+".uidMappings", "empty, and without a user namespace in linux.namespaces there is no container mapping for \"idmap\"/\"ridmap\" to take; give uidMappings and gidMappings")
			case implied:
			case len(m.UIDMappings) == 0:
				return fieldErr(f+".uidMappings", "empty; an id-mapped mount needs both uidMappings and gidMappings")
			case len(m.GIDMappings) == 0:
				return fieldErr(f+".gidMappings", "empty; an id-mapped mount needs both uidMappings and gidMappings")
			}
			if err := idMappings(f+".uidMappings", m.UIDMappings); err != nil {
				return err
			}
			if err := idMappings(f+".gidMappings", m.GIDMappings); err != nil {
				return err
			}
		}
	}
	return nil
}

func idMappings(field string, ms []specs.LinuxIDMapping) error {
	for i, m := range ms {
		f := fmt.Sprintf("%s[%d]", field, i)
		if m.Size == 0 {
			return fieldErr(f+".size", "must be greater than 0")
		}
		if uint64(m.ContainerID)+uint64(m.Size) > 1<<32 {
			return fieldErr(f+".size", "containerID %d + size %d runs past the last id 4294967295", m.ContainerID, m.Size)
		}
		if uint64(m.HostID)+uint64(m.Size) > 1<<32 {
			return fieldErr(f+".size", "hostID %d + size %d runs past the last id 4294967295", m.HostID, m.Size)
		}
	}
	return nil
}

func (v *validator) hooks() error {
	h := v.s.Hooks
	if h == nil {
		return nil
	}
	kinds := []struct {
		name  string
		hooks []specs.Hook
	}{
		//lint:ignore SA1019 prestart is deprecated but engines and the conformance suite still use it
		{"prestart", h.Prestart}, {"createRuntime", h.CreateRuntime}, {"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer}, {"poststart", h.Poststart}, {"poststop", h.Poststop},
	}
	for _, k := range kinds {
		for i, hk := range k.hooks {
			f := fmt.Sprintf("hooks.%s[%d]", k.name, i)
			if err := absPath(f+".path", hk.Path); err != nil {
				return err
			}
			if hk.Timeout != nil && *hk.Timeout <= 0 {
				return fieldErr(f+".timeout", "%d; a timeout must be greater than 0 seconds", *hk.Timeout)
			}
		}
	}
	return nil
}

func (v *validator) annotations() error {
	if _, ok := v.s.Annotations[""]; ok {
		return fieldErr("annotations", "contains an empty key")
	}
	return nil
}

func (v *validator) otherPlatforms() error {
	for _, p := range []struct {
		name string
		set  bool
	}{
		{"solaris", v.s.Solaris != nil}, {"windows", v.s.Windows != nil}, {"vm", v.s.VM != nil},
		{"zos", v.s.ZOS != nil}, {"freebsd", v.s.FreeBSD != nil},
	} {
		if p.set {
			v.warn("%q applies to another platform and is ignored on Linux", p.name)
		}
	}
	return nil
}

func (v *validator) linux() error {
	l := v.s.Linux
	if l == nil {
		return nil
	}
	steps := []func(*specs.Linux) error{
		v.namespaces,
		v.userns,
		v.timens,
		v.sysctls,
		v.devices,
		v.cgroups,
		v.paths,
		v.checkSeccomp,
		v.personality,
		v.unsupported,
	}
	for _, st := range steps {
		if err := st(l); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) namespaces(l *specs.Linux) error {
	seen := map[specs.LinuxNamespaceType]int{}
	for i, n := range l.Namespaces {
		f := fmt.Sprintf("linux.namespaces[%d]", i)
		if !knownNamespaces[n.Type] {
			return fieldErr(f+".type", "unknown namespace type %s", truncQuote(string(n.Type)))
		}
		if j, dup := seen[n.Type]; dup {
			return fieldErr(f+".type", "duplicate namespace %q (also linux.namespaces[%d])", n.Type, j)
		}
		seen[n.Type] = i
		if n.Path != "" {
			if err := absPath(f+".path", n.Path); err != nil {
				return err
			}
		}
	}
	if (len(l.MaskedPaths) > 0 || len(l.ReadonlyPaths) > 0) && !HasNamespace(v.s, specs.MountNamespace) {
		field := "linux.maskedPaths"
		if len(l.MaskedPaths) == 0 {
			field = "linux.readonlyPaths"
		}
		return fieldErr(field, "set, but linux.namespaces has no \"mount\" entry; masking them would change the host's mounts")
	}
	return nil
}

func (v *validator) userns(l *specs.Linux) error {
	ns, has := Namespace(v.s, specs.UserNamespace)
	switch {
	case has && ns.Path == "":
		if len(l.UIDMappings) == 0 {
			return fieldErr("linux.uidMappings", "empty, but a new user namespace is requested; give the uid ranges to map")
		}
		if len(l.GIDMappings) == 0 {
			return fieldErr("linux.gidMappings", "empty, but a new user namespace is requested; give the gid ranges to map")
		}
	case !has && len(l.UIDMappings) > 0:
		return fieldErr("linux.uidMappings", "set, but linux.namespaces has no \"user\" entry")
	case !has && len(l.GIDMappings) > 0:
		return fieldErr("linux.gidMappings", "set, but linux.namespaces has no \"user\" entry")
	}
	if err := idMappings("linux.uidMappings", l.UIDMappings); err != nil {
		return err
	}
	return idMappings("linux.gidMappings", l.GIDMappings)
}

func (v *validator) timens(l *specs.Linux) error {
	ns, has := Namespace(v.s, specs.TimeNamespace)
	path := ns.Path
	if len(l.TimeOffsets) == 0 {
		return nil
	}
	if !has {
		return fieldErr("linux.timeOffsets", "set, but linux.namespaces has no \"time\" entry")
	}
	if path != "" {
		return fieldErr("linux.timeOffsets", "set together with a time namespace path; offsets can only be applied to a new time namespace")
	}
	for _, clock := range sortedKeys(l.TimeOffsets) {
		f := "linux.timeOffsets[" + strconv.Quote(clock) + "]"
		if clock != "monotonic" && clock != "boottime" {
			return fieldErr(f, "only the \"monotonic\" and \"boottime\" clocks can be offset")
		}
		if l.TimeOffsets[clock].Nanosecs >= 1e9 {
			return fieldErr(f+".nanosecs", "%d is not below 1000000000", l.TimeOffsets[clock].Nanosecs)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// SysctlPath converts a sysctl name into its path below /proc/sys. Names use
// '.' between components, or '/' as in sysctl.d(5) (then a '.' is part of a
// component, as in "net/ipv4/conf/eth0.100/rp_filter"). Components that
// would walk out of the intended directory ("..") are rejected: the value is
// written as root into procfs, where /proc/sysrq-trigger is one "../" away.
func SysctlPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty sysctl name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("sysctl name contains a NUL byte")
	}
	sep := "."
	if i := strings.IndexAny(name, "./"); i >= 0 && name[i] == '/' {
		sep = "/"
	}
	parts := strings.Split(name, sep)
	for i, p := range parts {
		if sep == "." {
			// With '.' separators a '/' stands for a literal '.'.
			p = strings.ReplaceAll(p, "/", ".")
		}
		if p == "" || p == "." || p == ".." {
			return "", fmt.Errorf("sysctl name %q has an empty, \".\" or \"..\" component", name)
		}
		parts[i] = p
	}
	return strings.Join(parts, "/"), nil
}

// sysctlDotted is the canonical dotted form used to decide which namespace a
// sysctl belongs to ("net/ipv4/ip_forward" -> "net.ipv4.ip_forward").
func sysctlDotted(path string) string {
	return strings.ReplaceAll(path, "/", ".")
}

// sysctls allows only sysctls that are namespaced by a namespace the
// container owns (the same rules as runc); anything else would be written to
// the host kernel's global setting.
func (v *validator) sysctls(l *specs.Linux) error {
	for _, name := range sortedKeys(l.Sysctl) {
		f := "linux.sysctl[" + strconv.Quote(name) + "]"
		p, err := SysctlPath(name)
		if err != nil {
			return fieldErr(f, "%v", err)
		}
		if err := noNUL(f, l.Sysctl[name]); err != nil {
			return err
		}
		s := sysctlDotted(p)
		switch {
		case ipcSysctls[s] || strings.HasPrefix(s, "fs.mqueue."):
			if !HasNamespace(v.s, specs.IPCNamespace) {
				return fieldErr(f, "needs an \"ipc\" entry in linux.namespaces; without one it would change the host's setting")
			}
		case strings.HasPrefix(s, "net."):
			ns, has := Namespace(v.s, specs.NetworkNamespace)
			path := ns.Path
			if !has {
				return fieldErr(f, "needs a \"network\" entry in linux.namespaces; without one it would change the host's setting")
			}
			if path != "" {
				host, err := sameNS(path, "/proc/self/ns/net")
				if err != nil {
					return fieldErr(f, "cannot check the network namespace %q: %v", path, err)
				}
				if host {
					return fieldErr(f, "the network namespace %q is the runtime's own (the host's); refusing to change its settings", path)
				}
			}
		case s == "kernel.domainname" && HasNamespace(v.s, specs.UTSNamespace):
		case s == "kernel.hostname" && HasNamespace(v.s, specs.UTSNamespace):
			return fieldErr(f, "conflicts with the \"hostname\" field; set the hostname there")
		case s == "kernel.hostname" || s == "kernel.domainname":
			return fieldErr(f, "needs a \"uts\" entry in linux.namespaces; without one it would change the host's setting")
		case strings.HasPrefix(s, "user."):
			if !HasNamespace(v.s, specs.UserNamespace) {
				return fieldErr(f, "needs a \"user\" entry in linux.namespaces; without one it would change the host's limits")
			}
		default:
			return fieldErr(f, "is not namespaced by any namespace the container can own; it would change the host kernel's setting")
		}
	}
	return nil
}

func sameNS(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, fmt.Errorf("stat %s: %w", a, err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, fmt.Errorf("stat %s: %w", b, err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

func (v *validator) devices(l *specs.Linux) error {
	for i, d := range l.Devices {
		f := fmt.Sprintf("linux.devices[%d]", i)
		if err := absPath(f+".path", d.Path); err != nil {
			return err
		}
		switch d.Type {
		case "c", "b", "u":
			if d.Major == 0 && d.Minor == 0 {
				return fieldErr(f, "major and minor are required for a %q device (0:0 is not a device)", d.Type)
			}
			if d.Major < 0 || d.Minor < 0 || d.Major > 0xfff || d.Minor > 0xfffff {
				return fieldErr(f, "device number %d:%d is outside the kernel's range (major 0..4095, minor 0..1048575)", d.Major, d.Minor)
			}
		case "p":
		default:
			return fieldErr(f+".type", "unknown device type %s (c, b, u or p)", truncQuote(d.Type))
		}
		// Podman (and runc's own libcontainer specconv) write the raw
		// st_mode, file type included (020666 for a char device): accept
		// the type bits when they match linux.devices[].type.
		if d.FileMode != nil && uint32(*d.FileMode)&^0o7777 != 0 && uint32(*d.FileMode)&^0o7777 != deviceTypeBits[d.Type] {
			return fieldErr(f+".fileMode", "%#o has bits beyond the permission bits (07777) that are not the file type of a %q device", uint32(*d.FileMode), d.Type)
		}
	}
	if l.Resources == nil {
		return nil
	}
	for i, d := range l.Resources.Devices {
		f := fmt.Sprintf("linux.resources.devices[%d]", i)
		switch d.Type {
		case "", "a", "c", "b":
		default:
			return fieldErr(f+".type", "unknown device type %s (a, c or b)", truncQuote(d.Type))
		}
		if strings.Trim(d.Access, "rwm") != "" {
			return fieldErr(f+".access", "%s may only contain r, w and m", truncQuote(d.Access))
		}
	}
	return nil
}

func (v *validator) cgroups(l *specs.Linux) error {
	if err := noNUL("linux.cgroupsPath", l.CgroupsPath); err != nil {
		return err
	}
	// Reject ".." before any manager joins the path: it would place the
	// container's cgroup outside the parent the engine chose for it.
	for _, part := range strings.FieldsFunc(l.CgroupsPath, func(r rune) bool { return r == '/' || r == ':' }) {
		if part == ".." {
			return fieldErr("linux.cgroupsPath", "%q contains a \"..\" component", l.CgroupsPath)
		}
	}
	if l.Resources != nil && len(l.Resources.Rdma) > 0 {
		return fieldErr("linux.resources.rdma", "the RDMA controller is not supported by bulwark (see `bulwark features`)")
	}
	return nil
}

var propagations = map[string]bool{
	"": true, "private": true, "rprivate": true, "slave": true, "rslave": true,
	"shared": true, "rshared": true, "unbindable": true, "runbindable": true,
}

func (v *validator) paths(l *specs.Linux) error {
	for i, p := range l.MaskedPaths {
		if err := absPath(fmt.Sprintf("linux.maskedPaths[%d]", i), p); err != nil {
			return err
		}
	}
	for i, p := range l.ReadonlyPaths {
		if err := absPath(fmt.Sprintf("linux.readonlyPaths[%d]", i), p); err != nil {
			return err
		}
	}
	if !propagations[l.RootfsPropagation] {
		return fieldErr("linux.rootfsPropagation", "unknown propagation %s (private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable)", truncQuote(l.RootfsPropagation))
	}
	return nil
}

func (v *validator) checkSeccomp(l *specs.Linux) error {
	if l.Seccomp == nil {
		return nil
	}
	if v.seccomp == nil {
		return ErrNoSeccompValidator
	}
	err := v.seccomp(l.Seccomp)
	if err == nil {
		return nil
	}
	// The validator reports every problem; like the rest of Validate, the
	// first one leads and names the field, the others follow it.
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	fe := &FieldError{File: ConfigFile, Field: "linux.seccomp", Msg: err.Error()}
	var first *FieldError
	if errors.As(errs[0], &first) {
		fe.Field, fe.Msg = first.Field, first.Msg
		for _, e := range errs[1:] {
			fe.Msg += "\n" + e.Error()
		}
	}
	fe.Err = fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	return fe
}

func (v *validator) personality(l *specs.Linux) error {
	p := l.Personality
	if p == nil {
		return nil
	}
	if p.Domain != specs.PerLinux && p.Domain != specs.PerLinux32 {
		return fieldErr("linux.personality.domain", "unknown domain %s (LINUX or LINUX32)", truncQuote(string(p.Domain)))
	}
	if len(p.Flags) > 0 {
		return fieldErr("linux.personality.flags", "no personality flags are defined by runtime-spec, got %q", p.Flags)
	}
	return nil
}

// unsupported rejects features bulwark does not implement. Ignoring them
// would run the container with fewer restrictions than the config asks for.
func (v *validator) unsupported(l *specs.Linux) error {
	if l.MemoryPolicy != nil {
		if _, _, field, err := sched.MemoryPolicy(l.MemoryPolicy); err != nil {
			return fieldErr(strings.TrimSuffix("linux.memoryPolicy."+field, "."), "%v", err)
		}
	}
	switch {
	case l.IntelRdt != nil:
		return fieldErr("linux.intelRdt", "Intel RDT is not supported by bulwark (see `bulwark features`)")
	case len(l.NetDevices) > 0:
		return fieldErr("linux.netDevices", "moving network devices into the container is not supported by bulwark (see `bulwark features`)")
	case l.MountLabel != "" && selinuxEnabled():
		return fieldErr("linux.mountLabel", "SELinux is not supported by bulwark (see `bulwark features`); refusing to mount without the requested label")
	case l.MountLabel != "":
		// Without SELinux in the kernel no policy reads labels, so mounting
		// unlabelled loses nothing the label would have enforced (crun does
		// the same; the runtime-tools suite requires the config to run).
		v.warn("linux.mountLabel: SELinux is not enabled on this host; the label %q is not applied", l.MountLabel)
	}
	return nil
}

// selinuxEnabled reports whether the kernel has SELinux active: its
// filesystem is then mounted and labels take effect.
func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// deviceTypeBits is the S_IFMT part of st_mode for each linux.devices type.
var deviceTypeBits = map[string]uint32{"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}
