// Package caps validates OCI capability names and applies the five capability sets
// (bounding, effective, permitted, inheritable, ambient) to the container process.
//
// Threat model: capabilities are root's powers split into pieces. A container process
// that keeps a capability it does not need (CAP_SYS_ADMIN, CAP_SYS_MODULE,
// CAP_DAC_READ_SEARCH for open_by_handle_at, ...) hands an attacker who compromises it
// a ready-made escape tool. The bounding set is the ceiling that no later execve of a
// setuid or file-capability binary can exceed, so it is dropped first; then the
// process's own sets are set to exactly what the config lists, nothing inherited from
// the runtime. A misspelt capability name is an error, not silently ignored, so a
// config author never believes a capability was dropped or granted when it was not.
//
// Every operation here acts on the calling OS thread only (capset and prctl with
// pid 0 are per-thread in Linux), so callers must hold runtime.LockOSThread from
// DropBounding through the final execve.
package caps

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// ErrUnknown is wrapped by the *oci.FieldError for names no Linux version defines,
// as far as this build knows.
var ErrUnknown = errors.New("unknown capability")

var (
	byName = map[string]capability.Cap{}
	names  []string
)

func init() {
	for _, c := range capability.ListKnown() {
		n := nameOf(c)
		byName[n] = c
		names = append(names, n)
	}
}

// nameOf spells c as config.json does ("CAP_NET_ADMIN").
func nameOf(c capability.Cap) string { return oci.CapabilityName(c.String()) }

// Names returns every capability name this build knows, in kernel bit order. Some
// may be unsupported by the running kernel; see Validate.
func Names() []string { return slices.Clone(names) }

// set pairs a spec field with the library's set type, in the order the spec lists them.
type set struct {
	field string
	which capability.CapType
	names []string
}

func sets(c *specs.LinuxCapabilities) []set {
	return []set{
		{"bounding", capability.BOUNDING, c.Bounding},
		{"effective", capability.EFFECTIVE, c.Effective},
		{"inheritable", capability.INHERITABLE, c.Inheritable},
		{"permitted", capability.PERMITTED, c.Permitted},
		{"ambient", capability.AMBIENT, c.Ambient},
	}
}

// resolved is a config translated to capability numbers, with names the running
// kernel does not support already left out.
type resolved struct {
	caps     map[capability.CapType][]capability.Cap
	warnings []string
}

func (r *resolved) has(which capability.CapType, c capability.Cap) bool {
	return slices.Contains(r.caps[which], c)
}

func resolve(c *specs.LinuxCapabilities) (*resolved, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("finding the highest capability the kernel supports: %w", err)
	}
	r := &resolved{caps: map[capability.CapType][]capability.Cap{}}
	for _, s := range sets(c) {
		for i, n := range s.names {
			field := fmt.Sprintf("process.capabilities.%s[%d]", s.field, i)
			cp, ok := byName[n]
			if !ok {
				msg := fmt.Sprintf("unknown capability %q", n)
				if guess := oci.CapabilityName(n); oci.IsKnownCapability(guess) {
					if strings.HasPrefix(strings.ToUpper(n), "CAP_") {
						msg += fmt.Sprintf(" (names are upper case: %q)", guess)
					} else {
						msg += fmt.Sprintf(" (did you mean %q?)", guess)
					}
				}
				return nil, &oci.FieldError{Field: field, Msg: msg, Err: ErrUnknown}
			}
			if cp > last {
				// Same as runc: a config written for a newer kernel still runs, minus
				// the capability this kernel cannot grant anyway.
				r.warnings = append(r.warnings, fmt.Sprintf("%s: %s is not supported by the running kernel (last capability is %s); ignoring it",
					field, n, nameOf(last)))
				continue
			}
			if !slices.Contains(r.caps[s.which], cp) {
				r.caps[s.which] = append(r.caps[s.which], cp)
			}
		}
	}

	for i, n := range c.Effective {
		if cp := byName[n]; cp <= last && !r.has(capability.PERMITTED, cp) {
			return nil, &oci.FieldError{
				Field: fmt.Sprintf("process.capabilities.effective[%d]", i),
				Msg:   fmt.Sprintf("%s is not in process.capabilities.permitted; the kernel refuses an effective capability that is not permitted", n),
			}
		}
	}
	for i, n := range c.Ambient {
		cp := byName[n]
		if cp > last || (r.has(capability.PERMITTED, cp) && r.has(capability.INHERITABLE, cp)) {
			continue
		}
		// The kernel only raises an ambient capability that is both permitted and
		// inheritable. runc warns and runs the container without it; so do we, and
		// Apply skips it rather than failing halfway through.
		r.warnings = append(r.warnings, fmt.Sprintf("process.capabilities.ambient[%d]: %s is not in both permitted and inheritable, so it cannot be ambient; ignoring it", i, n))
		r.caps[capability.AMBIENT] = slices.DeleteFunc(r.caps[capability.AMBIENT], func(x capability.Cap) bool { return x == cp })
	}
	return r, nil
}

// Validate checks every name in c. Names unknown to Linux are an error (the runtime
// spec says MUST), as is an effective capability that is not permitted. Names the
// running kernel is too old for, and ambient capabilities that cannot be raised, are
// returned as warnings and ignored by DropBounding and Apply, matching runc. A nil c
// is valid.
func Validate(c *specs.LinuxCapabilities) (warnings []string, err error) {
	if c == nil {
		return nil, nil
	}
	r, err := resolve(c)
	if err != nil {
		return nil, err
	}
	return r.warnings, nil
}

// DropBounding removes every capability not in c.Bounding from the calling thread's
// bounding set. It needs CAP_SETPCAP in the effective set, so it must run before the
// process changes to a non-root user. A nil c leaves capabilities untouched, as runc
// does; choosing a restrictive default is the config generator's job.
func DropBounding(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	r, err := resolve(c)
	if err != nil {
		return err
	}
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("finding the highest capability the kernel supports: %w", err)
	}
	for cp := capability.Cap(0); cp <= last; cp++ {
		if r.has(capability.BOUNDING, cp) {
			continue
		}
		if err := capability.DropBound(cp); err != nil {
			return fmt.Errorf("dropping %s from the bounding set (needs CAP_SETPCAP): %w", nameOf(cp), err)
		}
	}
	return nil
}

// Apply sets the calling thread's effective, permitted and inheritable sets to exactly
// c's lists, then its ambient set. It runs after the switch to the container user
// (with PR_SET_KEEPCAPS held across setuid so that permitted survives it). A nil c
// leaves capabilities untouched.
func Apply(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	return apply(c, false)
}

// ApplyHoldingAdmin is Apply for a thread that must still load a seccomp
// filter without no_new_privs, which the kernel allows only to a thread
// with CAP_SYS_ADMIN in its effective set: the thread also keeps
// CAP_SYS_ADMIN in its effective and permitted sets, and only there, until
// its execve. It never goes into inheritable, ambient or bounding, and
// execve computes the new permitted and effective sets from those three
// and the file alone (the old permitted set plays no part: capabilities(7),
// "Transformation of capabilities during execve()"), so the program
// executed gets exactly c, as from Apply. A nil c is the empty set, as the
// init treats a process without capabilities.
func ApplyHoldingAdmin(c *specs.LinuxCapabilities) error {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	return apply(c, true)
}

func apply(c *specs.LinuxCapabilities, holdAdmin bool) error {
	r, err := resolve(c)
	if err != nil {
		return err
	}
	// pid 0 makes the library's capset and prctl calls act on the calling thread.
	p, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("initialising capability state: %w", err)
	}
	p.Clear(capability.CAPS)
	for _, which := range []capability.CapType{capability.EFFECTIVE, capability.PERMITTED, capability.INHERITABLE} {
		p.Set(which, r.caps[which]...)
	}
	if holdAdmin {
		p.Set(capability.EFFECTIVE|capability.PERMITTED, capability.CAP_SYS_ADMIN)
	}
	if err := p.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("setting effective, permitted and inheritable capabilities (permitted can only shrink; inheritable must stay within bounding): %w", err)
	}

	if err := capability.ResetAmbient(); err != nil {
		if errors.Is(err, syscall.EINVAL) && len(r.caps[capability.AMBIENT]) == 0 {
			// Pre-4.3 kernels have no ambient set; with none requested there is
			// nothing to clear.
			return nil
		}
		return fmt.Errorf("clearing ambient capabilities (needs Linux 4.3+): %w", err)
	}
	for _, cp := range r.caps[capability.AMBIENT] {
		if err := capability.SetAmbient(true, cp); err != nil {
			return fmt.Errorf("raising ambient capability %s: %w", nameOf(cp), err)
		}
	}
	return nil
}

// statusKeys maps /proc status fields to spec set names.
var statusKeys = map[string]string{
	"CapInh": "inheritable",
	"CapPrm": "permitted",
	"CapEff": "effective",
	"CapBnd": "bounding",
	"CapAmb": "ambient",
}

// Current reports the calling thread's five sets as capability names, keyed by the
// spec's set names ("bounding", "effective", ...). It reads /proc/thread-self/status
// because capabilities are per-thread and the process-wide /proc/self/status shows the
// main thread, which is not necessarily the one that called Apply.
func Current() (map[string][]string, error) {
	masks, err := readMasks("/proc/thread-self/status")
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(masks))
	for set, m := range masks {
		list := []string{}
		for bit := 0; bit < 64; bit++ {
			if m&(1<<bit) == 0 {
				continue
			}
			n := nameOf(capability.Cap(bit))
			if _, ok := byName[n]; !ok {
				n = "CAP_" + strconv.Itoa(bit) // newer kernel than this build
			}
			list = append(list, n)
		}
		out[set] = list
	}
	return out, nil
}

func readMasks(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading capabilities: %w", err)
	}
	defer f.Close()
	masks := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		set, known := statusKeys[key]
		if !ok || !known {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(val), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %s in %s: %w", key, path, err)
		}
		masks[set] = m
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(masks) != len(statusKeys) {
		return nil, fmt.Errorf("%s lacks some Cap* lines (found %d of %d)", path, len(masks), len(statusKeys))
	}
	return masks, nil
}
