// Package landlock confines a container's processes to the container's own
// mounts with the Landlock LSM.
//
// Threat: pivot_root and the mount namespace only decide which paths a
// process can name. A process that reaches a host file some other way still
// reads and writes it with its full DAC rights: an fd to a host directory
// leaked or passed in before the payload starts, /proc/<pid>/root of a
// process outside the container when the pid namespace is shared, a bind
// mount of the wrong source. Landlock checks every open, create, rename and
// unlink against rules attached to inodes, whatever path or fd led there.
//
// The rules come from the container's own mount table, read after pivot_root
// (every mount the init can still see is one the runtime made for this
// container): beneath each read-only mount the payload may read and execute,
// beneath each writable mount it may do everything, and nothing else. So a
// host file reached through a side door is refused with EACCES, and the
// source of a read-only bind mount stays read-only even when it is reached
// through a writable host mount. Landlock also forbids a confined process to
// ptrace (and so to use /proc/<pid>/root of) processes outside its domain.
//
// The intent travels in the annotation run.bulwark.landlock
// (oci.AnnotationLandlock) because the OCI
// runtime-spec has no Landlock field: "enforce" applies what the kernel's
// Landlock ABI supports (older kernels degrade, a kernel without Landlock
// runs the container unconfined), "require" fails the create when the
// kernel has no Landlock at all, "off" (or no annotation) does nothing.
//
// procfs is read-only to the payload unless run.bulwark.landlock-proc says
// "rw": a process may open /proc/PID/mem for writing of any dumpable process
// of its uid, whatever seccomp says about ptrace, and Landlock's ptrace rule
// allows that inside one domain, so two processes of one payload could write
// each other's memory. Without write access beneath /proc every such open is
// refused (EACCES), the process's own mem file and the other per-process
// files (oom_score_adj, attr, comm of another thread, clear_refs) included;
// reading them, and opening /proc/self/fd/N, which Landlock checks against
// the file the fd names, still work. Rights add up along a path, so no rule
// takes write access to /proc away beneath a writable rootfs (the dev
// profile, Docker's under the floor): there the init makes procfs itself a
// read-only mount (pkg/containerinit, rootfs.ReadOnlyProc), and the same
// opens fail with EROFS before Landlock is asked.
//
// Only filesystem access is handled. IPC scoping (signals, abstract unix
// sockets) is left out on purpose: every `bulwark exec` process gets its own
// sibling domain, and scoping would stop the container's processes from
// signalling each other across those domains.
package landlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ll "github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Modes of the annotation oci.AnnotationLandlock.
const (
	ModeOff     = "off"
	ModeEnforce = "enforce"
	ModeRequire = "require"
)

// ErrUnavailable is returned for ModeRequire on a kernel without Landlock.
var ErrUnavailable = errors.New("the kernel has no Landlock (not built in, or not in the lsm= boot list)")

// annotationError points at the Landlock annotation in config.json.
func annotationError(msg string, err error) error {
	return &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("annotations[%q]", oci.AnnotationLandlock), Msg: msg, Err: err}
}

// ModeOf returns the Landlock mode an annotation set asks for; ModeOff when
// the annotation is absent.
func ModeOf(annotations map[string]string) (string, error) {
	v, ok := annotations[oci.AnnotationLandlock]
	if !ok || v == "" {
		return ModeOff, nil
	}
	switch v {
	case ModeOff, ModeEnforce, ModeRequire:
		return v, nil
	}
	return "", annotationError(fmt.Sprintf("%q is not one of %s, %s, %s", v, ModeEnforce, ModeRequire, ModeOff), oci.ErrInvalidConfig)
}

// ABI returns the Landlock ABI version the runtime enforces on this kernel:
// the kernel's version capped at the newest one go-landlock knows, 0 when
// the kernel has no Landlock.
func ABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return min(v, newestABI)
}

// newestABI is the highest ABI whose rights go-landlock can express.
const newestABI = 11

// config handles every filesystem right go-landlock knows; BestEffort drops
// the ones the running kernel does not have.
var config = ll.Config{HandledAccessFS: ll.V11.HandledAccessFS}.BestEffort()

// Rule is one mount the payload keeps access beneath.
type Rule struct {
	Path     string
	Writable bool
	// Dir is false for a mount of a single file (a bind-mounted
	// resolv.conf, a masked path): Landlock only takes file rights there.
	Dir bool
}

// RulesFromMounts turns mount table entries into rules: read-only rights for
// mounts with the per-mount "ro" flag, full rights for the others.
// Mountpoints that no longer resolve (hidden under a later mount) are
// skipped; what hides them has its own entry.
func RulesFromMounts(mounts []*mountinfo.Info) ([]Rule, error) {
	var rules []Rule
	seen := map[string]bool{}
	for _, m := range mounts {
		var st unix.Stat_t
		if err := unix.Stat(m.Mountpoint, &st); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			return nil, fmt.Errorf("landlock: mountpoint %s: %w", m.Mountpoint, err)
		}
		r := Rule{
			Path:     m.Mountpoint,
			Writable: !hasOpt(m.Options, "ro") && !hasOpt(m.VFSOptions, "ro"),
			Dir:      st.Mode&unix.S_IFMT == unix.S_IFDIR,
		}
		// A path mounted over several times resolves to the top mount
		// only; a rule is attached to that one inode, so keep one entry,
		// the last (topmost) one.
		if seen[r.Path] {
			for i := range rules {
				if rules[i].Path == r.Path {
					rules[i] = r
				}
			}
			continue
		}
		seen[r.Path] = true
		rules = append(rules, r)
	}
	return rules, nil
}

// procReadOnly takes write access away beneath every procfs mount.
func procReadOnly(rules []Rule, mounts []*mountinfo.Info) []Rule {
	for _, m := range mounts {
		if m.FSType != "proc" {
			continue
		}
		for i := range rules {
			if rules[i].Path == m.Mountpoint {
				rules[i].Writable = false
			}
		}
	}
	return rules
}

// ProcWritesOf reads oci.AnnotationLandlockProc: "rw" keeps procfs writable
// to the payload, "ro" (or no annotation) does not.
func ProcWritesOf(annotations map[string]string) (bool, error) {
	switch v := annotations[oci.AnnotationLandlockProc]; v {
	case "", "ro":
		return false, nil
	case "rw":
		return true, nil
	default:
		return false, &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("annotations[%q]", oci.AnnotationLandlockProc),
			Msg: fmt.Sprintf("unknown value %q (want ro or rw)", v), Err: oci.ErrInvalidConfig}
	}
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// landlockRule maps a Rule to go-landlock's rights. Device ioctls are
// granted everywhere: device access is the devices cgroup's decision, and a
// shell must still be able to set up /dev/tty. Connecting to a unix socket
// does not write to the filesystem, so read-only mounts grant it too. Refer
// (rename and link across directories) is granted beneath writable mounts,
// otherwise mv between two directories of the same tmpfs would fail.
func landlockRule(r Rule) ll.Rule {
	switch {
	case r.Dir && r.Writable:
		return ll.RWDirs(r.Path).WithRefer().WithIoctlDev().WithResolveUnix()
	case r.Dir:
		return ll.RODirs(r.Path).WithIoctlDev().WithResolveUnix()
	case r.Writable:
		return ll.RWFiles(r.Path).WithIoctlDev()
	default:
		return ll.ROFiles(r.Path).WithIoctlDev()
	}
}

// Ruleset is a built Landlock ruleset that has not been enforced yet.
type Ruleset struct {
	fd    int
	flags uint32
	abi   int
	Rules []Rule
}

// ABI is the Landlock ABI version the ruleset was built for.
func (r *Ruleset) ABI() int { return r.abi }

// WritableOf returns the paths oci.AnnotationLandlockWritable lists; nil
// when it is absent (no narrowing).
func WritableOf(annotations map[string]string) ([]string, error) {
	v, ok := annotations[oci.AnnotationLandlockWritable]
	if !ok {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return nil, &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("annotations[%q]", oci.AnnotationLandlockWritable),
				Msg: fmt.Sprintf("%q is not a clean absolute path", p), Err: oci.ErrInvalidConfig}
		}
		out = append(out, p)
	}
	if out == nil {
		out = []string{} // present but empty: no writes at all
	}
	return out, nil
}

// kernelFS are the mounts Narrow leaves as they are: the kernel checks
// writes there itself (/proc, /sys), and /dev holds the nodes every shell
// writes to (/dev/null, the terminal).
var kernelFS = []string{"/proc", "/sys", "/dev"}

func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Narrow makes every writable directory mount read-only in rules except
// beneath the writable paths, each of which gets its own full-rights
// rule. A path that does not exist yet (a directory the workload makes)
// is granted at its nearest existing ancestor; a path on a read-only
// mount is dropped (writes there fail anyway). Mounts under /proc, /sys
// and /dev are left alone.
func Narrow(rules []Rule, writable []string) []Rule {
	out := make([]Rule, 0, len(rules)+len(writable))
	mountOf := func(p string) *Rule {
		var best *Rule
		for i := range rules {
			if rules[i].Dir && under(p, rules[i].Path) && (best == nil || len(rules[i].Path) > len(best.Path)) {
				best = &rules[i]
			}
		}
		return best
	}
	for _, r := range rules {
		kernel := false
		for _, k := range kernelFS {
			kernel = kernel || under(r.Path, k)
		}
		if r.Dir && r.Writable && !kernel {
			r.Writable = false
		}
		out = append(out, r)
	}
	for _, w := range writable {
		for w != "/" {
			if _, err := os.Stat(w); err == nil {
				break
			}
			w = filepath.Dir(w)
		}
		if m := mountOf(w); m == nil || !m.Writable {
			continue
		}
		out = append(out, Rule{Path: w, Writable: true, Dir: true})
	}
	return out
}

// Prepare builds the ruleset for mode from the calling process's mount
// table. It must run after the last mount is made (a confined process may
// not mount) and while the runtime still has its privileges, so that every
// mountpoint can be opened whatever its permissions. It returns nil for
// ModeOff and when the kernel has no Landlock under ModeEnforce. With
// writable (not nil), writes are narrowed to those paths (Narrow).
func Prepare(mode string, writable ...string) (*Ruleset, error) {
	return PrepareWith(mode, false, writable)
}

// PrepareWith is Prepare with the choice of procWrites: whether the payload
// may write beneath procfs mounts (see the package doc). writable nil means
// no narrowing.
func PrepareWith(mode string, procWrites bool, writable []string) (*Ruleset, error) {
	switch mode {
	case ModeOff, "":
		return nil, nil
	case ModeEnforce, ModeRequire:
	default:
		return nil, annotationError(fmt.Sprintf("unknown mode %q", mode), oci.ErrInvalidConfig)
	}
	abi := ABI()
	if abi == 0 {
		if mode == ModeRequire {
			return nil, annotationError(fmt.Sprintf("%q: %v", mode, ErrUnavailable), ErrUnavailable)
		}
		return nil, nil
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("landlock: reading the mount table: %w", err)
	}
	rules, err := RulesFromMounts(mounts)
	if err != nil {
		return nil, err
	}
	if !procWrites {
		rules = procReadOnly(rules, mounts)
	}
	if writable != nil {
		rules = Narrow(rules, writable)
	}
	llRules := make([]ll.Rule, 0, len(rules))
	for _, r := range rules {
		llRules = append(llRules, landlockRule(r))
	}
	fd, flags, err := config.NewRulesetFD(llRules...)
	if err != nil {
		return nil, fmt.Errorf("landlock: building the ruleset: %w", err)
	}
	if fd < 0 {
		// Best effort degraded to nothing (a rule needs a right this
		// ABI lacks, e.g. refer on ABI 1).
		if mode == ModeRequire {
			return nil, annotationError(fmt.Sprintf("%q: Landlock ABI %d cannot express the rules: %v", mode, abi, ErrUnavailable), ErrUnavailable)
		}
		return nil, nil
	}
	return &Ruleset{fd: fd, flags: flags, abi: abi, Rules: rules}, nil
}

// Restrict confines the calling thread and sets no_new_privs on it, which
// the kernel requires of an unprivileged landlock_restrict_self. Landlock
// domains belong to a thread's credentials: the caller must have locked its
// OS thread and must execve from it, so the new program inherits the domain
// while the runtime's other threads, which never run payload code, die with
// the exec. The ruleset fd is closed either way.
func (r *Ruleset) Restrict() error {
	defer r.Close()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("landlock: no_new_privs: %w", err)
	}
	if err := llsys.LandlockRestrictSelf(r.fd, r.flags); err != nil {
		return fmt.Errorf("landlock: landlock_restrict_self: %w", err)
	}
	return nil
}

// Close releases the ruleset fd without enforcing it.
func (r *Ruleset) Close() {
	if r != nil && r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}
