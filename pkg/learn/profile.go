package learn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// FormatVersion is the version of the profile file this build writes and
// reads (the "bulwarkProfile" field).
const FormatVersion = 1

// ErrProfile marks a profile file that cannot be used: unreadable, not
// JSON, a field with a bad value. The message names the file and field.
var ErrProfile = errors.New("invalid profile")

// Profile is a learned profile file: the built-in profile it was learned
// under, what the recording runs saw, and what follows from that, the
// seccomp filter and the capabilities `bulwark run --profile FILE`
// enforces.
type Profile struct {
	Version int `json:"bulwarkProfile"`
	// Base is the built-in profile the workload was learned under; a run
	// with this file is Base with the learned seccomp and capabilities.
	Base     string     `json:"base"`
	Commands [][]string `json:"commands,omitempty"`
	// Capabilities are those kept: the ones the workload failed without.
	Capabilities []string `json:"capabilities"`
	// CapabilityMethod says how they were found.
	CapabilityMethod string `json:"capabilityMethod,omitempty"`
	// Seccomp is an OCI linux.seccomp object; SeccompReasons has one
	// line per entry of Seccomp.Syscalls, for explain.
	Seccomp        *specs.LinuxSeccomp `json:"seccomp"`
	SeccompReasons []string            `json:"seccompReasons,omitempty"`
	// Writable are the directories the workload wrote in: where the base
	// uses Landlock, writes anywhere else are refused (EACCES).
	Writable []string `json:"writable"`
	// WritableRootfs: the workload was learned, and runs, on a writable
	// rootfs (--writable, or a base that has one).
	WritableRootfs bool      `json:"writableRootfs,omitempty"`
	Observed       *Observed `json:"observed"`
	// SeccompBase names the filter the workload was recorded under when
	// it was not Base's: "config" for an engine's container
	// (run.bulwark.learn=PATH), whose refusals the learned filter keeps.
	SeccompBase string `json:"seccompBase,omitempty"`
}

// IsFile tells a profile file argument from a built-in profile name: it
// holds a path separator or ends in .json.
func IsFile(arg string) bool {
	return strings.ContainsRune(arg, '/') || strings.HasSuffix(arg, ".json")
}

// BaseSeccomp is the seccomp filter of built-in profile base.
func BaseSeccomp(base string) (*specs.LinuxSeccomp, error) {
	s, err := policy.Spec(base)
	if err != nil {
		return nil, err
	}
	if s.Linux == nil {
		return nil, nil
	}
	return s.Linux.Seccomp, nil
}

// Build makes the profile for what obs saw under built-in profile base,
// keeping capabilities caps.
func Build(base string, obs *Observed, caps []string, capMethod string, commands [][]string) (*Profile, error) {
	bs, err := BaseSeccomp(base)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w", base, err)
	}
	return BuildFrom(base, bs, obs, caps, capMethod, commands)
}

// BuildFrom is Build with the recording's seccomp filter given: an engine's
// container is recorded under its config's filter, not base's (which the
// profile still names for everything but seccomp).
func BuildFrom(base string, bs *specs.LinuxSeccomp, obs *Observed, caps []string, capMethod string, commands [][]string) (*Profile, error) {
	obs.sorted()
	sc, reasons := learnedSeccomp(base, bs, obs)
	caps = slices.Clone(caps)
	slices.Sort(caps)
	if caps == nil {
		caps = []string{}
	}
	p := &Profile{Version: FormatVersion, Base: base, Commands: commands, Capabilities: caps,
		CapabilityMethod: capMethod, Seccomp: sc, SeccompReasons: reasons, Observed: obs,
		Writable: writableDirs(obs.Written)}
	if err := seccomp.Validate(sc); err != nil {
		return nil, fmt.Errorf("learned seccomp profile: %w", err)
	}
	return p, nil
}

// learnedSeccomp allows what obs saw and nothing else, never more than
// base: every call base refuses with its own errno is refused the same
// way, a call seen is allowed as base allows it (its argument rules
// kept), and a watched call only with the argument values seen.
// Everything else gets base's default action (ENOSYS for Bulwark's).
func learnedSeccomp(baseName string, base *specs.LinuxSeccomp, obs *Observed) (*specs.LinuxSeccomp, []string) {
	out := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: errnoRet(unix.ENOSYS),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX32},
	}
	var reasons []string
	add := func(sc specs.LinuxSyscall, why string) {
		out.Syscalls = append(out.Syscalls, sc)
		reasons = append(reasons, why)
	}
	var baseReasons []string
	if base != nil && !letsThrough(base.DefaultAction) {
		out.DefaultAction, out.DefaultErrnoRet = base.DefaultAction, base.DefaultErrnoRet
		out.Architectures = slices.Clone(base.Architectures)
		baseReasons = profileReasons(baseName)
	}
	// Refusals first, as base has them: the same errno for the same call.
	var rulesOf = map[string][]int{}
	if base != nil {
		for i, sc := range base.Syscalls {
			for _, n := range sc.Names {
				rulesOf[n] = append(rulesOf[n], i)
			}
			if letsThrough(sc.Action) {
				continue
			}
			c := sc
			c.Names, c.Args = slices.Clone(sc.Names), slices.Clone(sc.Args)
			add(c, "refused by "+baseName+": "+reasonAt(baseReasons, i))
		}
	}
	var plain []string
	names := make([]string, 0, len(obs.Syscalls))
	for n := range obs.Syscalls {
		names = append(names, n)
	}
	sort.Strings(names)
	var always []string
	for _, n := range alwaysAllowed {
		if _, seen := obs.Syscalls[n]; !seen && allowance(base, n) == "all" {
			always = append(always, n)
		}
	}
	if len(always) > 0 {
		add(specs.LinuxSyscall{Names: always, Action: specs.ActAllow},
			"always allowed: the kernel's own return paths from signal handlers and restarted calls, and ending the process; a run may never have needed them yet")
	}
	for _, name := range names {
		if w, ok := watched[name]; ok {
			for _, key := range obs.Syscalls[name] {
				args, err := w.rule(key)
				if err != nil {
					continue // Load checks keys; Build only sees its own
				}
				add(specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args},
					"seen in the recording with "+w.describe(key))
			}
			continue
		}
		// As base allows it: unconditionally, or under base's conditions.
		conditional := false
		var allowRules []int
		for _, i := range rulesOf[name] {
			sc := base.Syscalls[i]
			if !letsThrough(sc.Action) {
				continue
			}
			allowRules = append(allowRules, i)
			if len(sc.Args) > 0 {
				conditional = true
			}
		}
		if !conditional {
			plain = append(plain, name)
			continue
		}
		for _, i := range allowRules {
			sc := base.Syscalls[i]
			add(specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: slices.Clone(sc.Args)},
				"seen in the recording; allowed as "+baseName+" allows it: "+reasonAt(baseReasons, i))
		}
	}
	if len(plain) > 0 {
		add(specs.LinuxSyscall{Names: plain, Action: specs.ActAllow}, "seen in the recording")
	}
	return out, reasons
}

// alwaysAllowed are allowed whether or not the recording saw them: a
// signal that arrives later than in the recording returns through
// rt_sigreturn (without it the process dies with SIGSEGV on return from
// its handler), an interrupted call restarts through restart_syscall, and
// a recording ended by a signal never saw the process exit.
var alwaysAllowed = []string{"exit", "exit_group", "restart_syscall", "rt_sigreturn"}

func errnoRet(e unix.Errno) *uint {
	v := uint(e)
	return &v
}

func letsThrough(a specs.LinuxSeccompAction) bool {
	return a == specs.ActAllow || a == specs.ActLog
}

func reasonAt(r []string, i int) string {
	if i < len(r) {
		return r[i]
	}
	return "its rule"
}

// rule turns an observed key ("0x2/0x1") back into the argument
// conditions that allow exactly it.
func (w watch) rule(key string) ([]specs.LinuxSeccompArg, error) {
	parts := strings.Split(key, "/")
	if len(parts) != len(w.args) {
		return nil, fmt.Errorf("%q: want %d values separated by /", key, len(w.args))
	}
	var out []specs.LinuxSeccompArg
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %q is not a number", key, p)
		}
		a := specs.LinuxSeccompArg{Index: uint(w.args[i]), Op: specs.OpEqualTo, Value: v}
		if w.mask[i] != 0 {
			if v&^w.mask[i] != 0 {
				return nil, fmt.Errorf("%q: %#x has bits outside the mask %#x", key, v, w.mask[i])
			}
			a = specs.LinuxSeccompArg{Index: uint(w.args[i]), Op: specs.OpMaskedEqual, Value: w.mask[i], ValueTwo: v}
		}
		out = append(out, a)
	}
	return out, nil
}

func (w watch) describe(key string) string {
	parts := strings.Split(key, "/")
	var b []string
	for i, p := range parts {
		if i < len(w.args) {
			s := fmt.Sprintf("args[%d]", w.args[i])
			if w.mask[i] != 0 {
				s += fmt.Sprintf("&%#x", w.mask[i])
			}
			b = append(b, s+"=="+p)
		}
	}
	return strings.Join(b, ", ")
}

// Options are the spec options of a run under p: its base profile's, then
// the learned seccomp filter and capabilities.
func (p *Profile) Options(devices ...string) ([]policy.Option, error) {
	opts, err := policy.Profile(p.Base, devices...)
	if err != nil {
		return nil, err
	}
	opts = append(opts, policy.WithSeccomp(p.Seccomp), policy.WithNoCapabilities())
	if len(p.Capabilities) > 0 {
		opts = append(opts, policy.WithCapabilities(p.Capabilities...))
	}
	if p.WritableRootfs {
		opts = append(opts, policy.WithReadonlyRootfs(false))
	}
	// Narrowing the writes is Landlock's job; it travels with the
	// Landlock request and the init applies it only under it.
	return append(opts, func(s *specs.Spec) error {
		if s.Annotations[oci.AnnotationLandlock] == "" {
			return nil
		}
		return policy.WithAnnotation(oci.AnnotationLandlockWritable, strings.Join(p.Writable, ","))(s)
	}), nil
}

// Spec is the full spec of a run under p (for explain).
func (p *Profile) Spec() (*specs.Spec, error) {
	opts, err := p.Options()
	if err != nil {
		return nil, err
	}
	s := policy.Base()
	if err := policy.Apply(s, opts...); err != nil {
		return nil, err
	}
	return s, nil
}

// Load reads and checks a profile file. Every error names the file and,
// where there is one, the field.
func Load(file string) (*Profile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", file, err)
	}
	return Parse(file, b)
}

// Parse checks the bytes of profile file name.
func Parse(name string, b []byte) (*Profile, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("profile %s: %s: %s: %w", name, field, fmt.Sprintf(format, args...), ErrProfile)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	p := new(Profile)
	if err := d.Decode(p); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(b, se.Offset)
			return nil, fmt.Errorf("profile %s: line %d, column %d: %v: %w", name, line, col, err, ErrProfile)
		}
		return nil, fmt.Errorf("profile %s: %v: %w", name, err, ErrProfile)
	}
	if p.Version != FormatVersion {
		return nil, bad("bulwarkProfile", "version %d, this bulwark reads %d (is this a learned profile? `bulwark learn -o FILE` writes them)", p.Version, FormatVersion)
	}
	if !slices.Contains(policy.ProfileNames(), p.Base) {
		return nil, bad("base", "unknown profile %q (known: %s)", p.Base, strings.Join(policy.ProfileNames(), ", "))
	}
	for i, c := range p.Capabilities {
		if _, err := policy.CapName(c); err != nil {
			return nil, bad(fmt.Sprintf("capabilities[%d]", i), "%v", err)
		}
	}
	if p.Seccomp == nil {
		return nil, bad("seccomp", "missing")
	}
	for i, sc := range p.Seccomp.Syscalls {
		for j, n := range sc.Names {
			if !seccomp.KnownSyscall(n) {
				return nil, bad(fmt.Sprintf("seccomp.syscalls[%d].names[%d]", i, j), "unknown syscall %q (libseccomp %s)", n, seccomp.Version())
			}
		}
	}
	if err := seccomp.Validate(p.Seccomp); err != nil {
		return nil, fmt.Errorf("profile %s: %w: %w", name, err, ErrProfile)
	}
	for i, w := range p.Writable {
		if !path.IsAbs(w) || path.Clean(w) != w || strings.Contains(w, ",") {
			return nil, bad(fmt.Sprintf("writable[%d]", i), "%q is not a clean absolute path", w)
		}
	}
	if p.Observed == nil {
		p.Observed = NewObserved()
	}
	if p.Observed.Syscalls == nil {
		p.Observed.Syscalls = map[string][]string{}
	}
	for n, keys := range p.Observed.Syscalls {
		if !seccomp.KnownSyscall(n) {
			return nil, bad("observed.syscalls."+n, "unknown syscall %q (libseccomp %s)", n, seccomp.Version())
		}
		if w, ok := watched[n]; ok {
			for _, k := range keys {
				if _, err := w.rule(k); err != nil {
					return nil, bad("observed.syscalls."+n, "%v", err)
				}
			}
		}
	}
	return p, nil
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for _, c := range b[:min(int(off), len(b))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// Write writes p to file atomically (a temporary file in the same
// directory, renamed over it): an interrupted write leaves the old file
// or none, never half a profile.
// TempPrefix is the name Write's temporary file next to file starts with
// (a killed learn's guard removes such leftovers).
func TempPrefix(file string) string { return "." + filepath.Base(file) + "." }

func (p *Profile) Write(file string) error {
	b, err := p.JSON()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), TempPrefix(file)+"*")
	if err != nil {
		return fmt.Errorf("writing profile %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing profile %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing profile %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing profile %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("writing profile %s: %w", file, err)
	}
	return nil
}

// JSON is the profile file's content.
func (p *Profile) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	return append(b, '\n'), err
}

// Summary is the human account of p: how much of its base it keeps.
func (p *Profile) Summary() []string {
	allowed := len(p.Observed.Syscalls)
	bs, _ := BaseSeccomp(p.Base)
	baseAllowed := len(AllowedNames(bs))
	out := []string{fmt.Sprintf("allowed %d of the %d syscalls %s allows (%d known to libseccomp %s)",
		allowed, baseAllowed, p.Base, len(seccomp.NativeSyscalls()), seccomp.Version())}
	if len(p.Capabilities) == 0 {
		out = append(out, "capabilities: none")
	} else {
		out = append(out, "capabilities: kept "+strings.Join(p.Capabilities, ", "))
	}
	if p.CapabilityMethod != "" {
		out[len(out)-1] += " (" + p.CapabilityMethod + ")"
	}
	if dirs := writeDirs(p.Observed.Written); len(dirs) > 0 {
		out = append(out, "writes only under "+strings.Join(dirs, ", "))
	} else {
		out = append(out, "writes no files")
	}
	if len(p.Observed.Executed) > 0 {
		out = append(out, "executes "+strings.Join(limit(p.Observed.Executed, 8), ", "))
	}
	if len(p.Observed.Devices) > 0 {
		out = append(out, "opens devices "+strings.Join(limit(p.Observed.Devices, 8), ", "))
	}
	if len(p.Observed.Ports) > 0 {
		out = append(out, "binds "+strings.Join(limit(p.Observed.Ports, 8), ", "))
	}
	return out
}

func limit(l []string, n int) []string {
	if len(l) <= n {
		return l
	}
	return append(slices.Clone(l[:n]), fmt.Sprintf("and %d more", len(l)-n))
}

// writableDirs are the directories Landlock lets the workload write in:
// those of writeDirs outside /proc, /sys and /dev (the kernel's own
// filesystems, which Landlock leaves alone here).
func writableDirs(files []string) []string {
	out := []string{}
	for _, d := range dirsOf(files) {
		if d == "/proc" || d == "/sys" || d == "/dev" || strings.HasPrefix(d, "/proc/") || strings.HasPrefix(d, "/sys/") || strings.HasPrefix(d, "/dev/") {
			continue
		}
		out = append(out, d)
	}
	return out
}

// writeDirs are the directories the written files are in, for a person.
func writeDirs(files []string) []string { return limit(dirsOf(files), 8) }

// dirsOf are the directories the written files are in, without those
// inside another listed one.
func dirsOf(files []string) []string {
	set := map[string]bool{}
	for _, f := range files {
		set[path.Dir(f)] = true
	}
	var dirs []string
	for d := range set {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var out []string
	for _, d := range dirs {
		if len(out) > 0 {
			last := out[len(out)-1]
			if d == last || strings.HasPrefix(d, strings.TrimSuffix(last, "/")+"/") {
				continue
			}
		}
		out = append(out, d)
	}
	return out
}

// AllowedNames lists the syscalls s lets through under some arguments.
func AllowedNames(s *specs.LinuxSeccomp) []string {
	var out []string
	for _, n := range seccomp.NativeSyscalls() {
		if allowance(s, n) != "" {
			out = append(out, n)
		}
	}
	return out
}

// allowance says how s lets name through: "all" (whatever the
// arguments), the conditions of its allowing rules, or "" (never).
func allowance(s *specs.LinuxSeccomp, name string) string {
	if s == nil {
		return "all"
	}
	var conds []string
	denied := false
	for _, sc := range s.Syscalls {
		if !slices.Contains(sc.Names, name) {
			continue
		}
		if !letsThrough(sc.Action) {
			denied = denied || len(sc.Args) == 0
			continue
		}
		if len(sc.Args) == 0 {
			return "all"
		}
		conds = append(conds, formatArgs(sc.Args))
	}
	if len(conds) > 0 {
		sort.Strings(conds)
		return "when " + strings.Join(conds, " or ")
	}
	if letsThrough(s.DefaultAction) && !denied {
		return "all"
	}
	return ""
}

func formatArgs(args []specs.LinuxSeccompArg) string {
	var b []string
	for _, a := range args {
		switch a.Op {
		case specs.OpMaskedEqual:
			b = append(b, fmt.Sprintf("args[%d]&%#x==%#x", a.Index, a.Value, a.ValueTwo))
		default:
			op := map[specs.LinuxSeccompOperator]string{specs.OpEqualTo: "==", specs.OpNotEqual: "!=", specs.OpLessThan: "<",
				specs.OpLessEqual: "<=", specs.OpGreaterThan: ">", specs.OpGreaterEqual: ">="}[a.Op]
			b = append(b, fmt.Sprintf("args[%d]%s%#x", a.Index, op, a.Value))
		}
	}
	return "(" + strings.Join(b, " && ") + ")"
}

func profileReasons(base string) []string {
	s, err := BaseSeccomp(base)
	if err != nil || s == nil {
		return nil
	}
	return seccompReasons(base, len(s.Syscalls))
}

// seccompReasons are the reasons of the built-in seccomp profile a policy
// profile uses, if they line up with its n rules.
func seccompReasons(base string, n int) []string {
	name := profiles.NameDefault
	if slices.Contains(profiles.Names(), base) {
		name = base
	}
	r := profiles.Reasons(name)
	if len(r) != n {
		return nil
	}
	return r
}
