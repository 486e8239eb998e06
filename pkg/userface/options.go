package userface

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// Options is a person's request, one field per flag of `bulwark run`;
// errors name the flag.
type Options struct {
	Rootfs  string
	Args    []string
	Profile string // empty: "default"
	Name    string // container id; empty: generated
	Env     []string
	Volumes []string // SRC:DST[:ro|rw]
	User    string   // UID[:GID]
	Workdir string
	// ReadOnly and Writable are nil unless given: the profile decides.
	ReadOnly  *bool
	Writable  *bool
	Tmpfs     []string // DST[:size=N]
	Memory    string   // a size (pkg/units)
	PidsLimit *int64   // nil: the profile's
	CapAdd    []string
	CapDrop   []string
	Devices   []string // host device nodes
	Net       string   // none (empty) or host
	Seccomp   string   // a linux.seccomp JSON file instead of the profile's
	TTY       bool
	Hostname  string
	// UsernsRange, HOSTID[:SIZE], maps to that host range instead of one
	// allocated from the pool (and so may be shared on purpose).
	UsernsRange string
}

// flagged names the flag in an option's error.
func flagged(flag string, o policy.Option) policy.Option {
	return func(s *specs.Spec) error {
		if err := o(s); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		return nil
	}
}

// Spec turns the request into a spec; it changes nothing on the host, so
// every bad input is reported before anything exists. Without UsernsRange
// the spec maps the pool's first range: Run replaces it with an allocated
// one.
func Spec(o *Options) (*specs.Spec, error) {
	profile := o.Profile
	if profile == "" {
		profile = "default"
	}
	net := o.Net
	switch net {
	case "":
		net = "none"
	case "none", "host":
	default:
		return nil, fmt.Errorf("--net %q: want none or host", net)
	}
	if net == "host" && profile == "netadmin" {
		return nil, fmt.Errorf("--net host conflicts with --profile netadmin: %w: NET_ADMIN and NET_RAW are only granted inside the container's own network namespace", policy.ErrConflict)
	}
	if o.ReadOnly != nil && o.Writable != nil {
		return nil, fmt.Errorf("--read-only conflicts with --writable: %w", policy.ErrConflict)
	}
	for _, d := range o.Devices {
		if err := policy.WithDevice(d)(&specs.Spec{}); err != nil {
			return nil, fmt.Errorf("--device %s: %w", d, err)
		}
	}
	opts, err := policy.Profile(profile, o.Devices...)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w", profile, err)
	}
	if o.Rootfs != "" {
		opts = append(opts, flagged("ROOTFS", policy.WithRootfs(o.Rootfs)))
	}
	if len(o.Args) > 0 {
		opts = append(opts, policy.WithArgs(o.Args...))
	}
	if o.User != "" {
		u, err := ParseUser(o.User)
		if err != nil {
			return nil, fmt.Errorf("--user %q: %w", o.User, err)
		}
		opts = append(opts, policy.WithUser(u.UID, u.GIDOr(u.UID)))
	}
	if o.Workdir != "" {
		opts = append(opts, flagged("--workdir", policy.WithCwd(o.Workdir)))
	}
	for _, e := range o.Env {
		opts = append(opts, flagged("--env", policy.WithEnv(e)))
	}
	if o.Hostname != "" {
		opts = append(opts, flagged("--hostname", policy.WithHostname(o.Hostname)))
	}
	if o.ReadOnly != nil {
		opts = append(opts, policy.WithReadonlyRootfs(*o.ReadOnly))
	}
	if o.Writable != nil {
		opts = append(opts, policy.WithReadonlyRootfs(!*o.Writable))
	}
	for _, t := range o.Tmpfs {
		dst, size, err := parseTmpfs(t)
		if err != nil {
			return nil, fmt.Errorf("--tmpfs %q: %w", t, err)
		}
		opts = append(opts, flagged("--tmpfs "+t, policy.WithTmpfs(dst, size)))
	}
	for _, v := range o.Volumes {
		src, dst, ro, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("--volume %q: %w", v, err)
		}
		opts = append(opts, flagged("--volume "+v, policy.WithMount(src, dst, ro)))
	}
	if o.Memory != "" {
		n, err := parseLimit(o.Memory)
		if err != nil {
			return nil, fmt.Errorf("--memory %q: %w", o.Memory, err)
		}
		opts = append(opts, flagged("--memory", policy.WithMemoryLimit(n)))
	}
	if o.PidsLimit != nil {
		opts = append(opts, flagged("--pids-limit", policy.WithPidsLimit(*o.PidsLimit)))
	}
	for _, c := range o.CapAdd {
		opts = append(opts, flagged("--cap-add "+c, policy.WithCapabilities(c)))
	}
	for _, c := range o.CapDrop {
		opts = append(opts, flagged("--cap-drop "+c, policy.WithoutCapabilities(c)))
	}
	if net == "host" {
		opts = append(opts, policy.WithHostNetwork())
	}
	if o.Seccomp != "" {
		sc, err := readSeccomp(o.Seccomp)
		if err != nil {
			return nil, fmt.Errorf("--seccomp %s: %w", o.Seccomp, err)
		}
		opts = append(opts, flagged("--seccomp "+o.Seccomp, policy.WithSeccomp(sc)))
	}
	if o.TTY {
		opts = append(opts, policy.WithTerminal(true))
	}
	if o.UsernsRange != "" {
		rg, err := userns.ParseRange(o.UsernsRange)
		if err != nil {
			return nil, fmt.Errorf("--userns-range %q: %w", o.UsernsRange, err)
		}
		opts = append(opts, policy.WithUserNamespace(rg.HostID, rg.Size))
	}
	s := policy.Base()
	if err := policy.Apply(s, opts...); err != nil {
		if errors.Is(err, policy.ErrConflict) && net == "host" {
			return nil, fmt.Errorf("--net host: %w", err)
		}
		return nil, err
	}
	return s, nil
}

func readSeccomp(path string) (*specs.LinuxSeccomp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := new(specs.LinuxSeccomp)
	if err := json.Unmarshal(b, sc); err != nil {
		return nil, err
	}
	return sc, nil
}
