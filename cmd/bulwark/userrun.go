package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// isUserRun tells the user face (`run [flags] ROOTFS -- CMD`) from runc's
// `run [-b DIR] ID` by the literal "--" after the run verb, and by nothing
// else: a bare ID may well name a directory too.
func isUserRun(app *cli.Command, args []string) bool {
	i, _ := commandArg(app, args)
	if i >= len(args) || args[i] != "run" {
		return false
	}
	return slices.Contains(args[i+1:], "--")
}

// useUserRun swaps runc's run for the user face's. Values of -e and -v may
// hold commas, so slice flags are not split on them.
func useUserRun(app *cli.Command) {
	for i, c := range app.Commands {
		if c.Name == "run" {
			app.Commands[i] = userRunCommand()
		}
	}
	app.DisableSliceFlagSeparator = true
}

func userRunFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "profile", Value: "default", Usage: "security profile: " + strings.Join(policy.ProfileNames(), ", ")},
		&cli.StringFlag{Name: "name", Usage: "container id (default: generated)"},
		&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "KEY=VALUE"},
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "SRC:DST[:ro] bind mount"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID] inside the container"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
		&cli.BoolFlag{Name: "read-only", Usage: "read-only rootfs (the default of most profiles)"},
		&cli.BoolFlag{Name: "writable", Usage: "writable rootfs"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "DST[:size=N] tmpfs mount"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit, e.g. 256m"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of tasks"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a capability"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a capability (ALL for all)"},
		&cli.StringSliceFlag{Name: "device", Usage: "host device node to give the container"},
		&cli.StringFlag{Name: "net", Value: "none", Usage: "none (own namespace, loopback only) or host"},
		&cli.StringFlag{Name: "seccomp", Usage: "seccomp profile (OCI linux.seccomp JSON) instead of the profile's"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringFlag{Name: "hostname", Usage: "container hostname"},
		&cli.StringFlag{Name: "userns-range", Usage: "HOSTID[:SIZE]: map to this host range instead of allocating one (may be shared on purpose)"},
	}
}

func userRunCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a hardened container",
		ArgsUsage: "ROOTFS -- COMMAND [ARG...]",
		Flags:     userRunFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			rootfs, argv, err := splitRootfsCommand(cmd.Args().Slice())
			if err != nil {
				return err
			}
			return userRun(cmd, rootfs, argv)
		},
	}
}

// splitRootfsCommand takes ROOTFS -- CMD... (urfave may or may not keep
// the "--" in the arguments).
func splitRootfsCommand(args []string) (string, []string, error) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return "", nil, errors.New("run: missing ROOTFS (usage: bulwark run [flags] ROOTFS -- COMMAND [ARG...])")
	}
	rootfs, rest := args[0], args[1:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return "", nil, errors.New("run: missing COMMAND after --")
	}
	return rootfs, rest, nil
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

// profileSpec turns the user-face flags into a spec; it touches nothing on
// the host, so every bad input is reported before anything exists.
func profileSpec(cmd *cli.Command, rootfs string, argv []string) (*specs.Spec, error) {
	profile := cmd.String("profile")
	net := cmd.String("net")
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
	if cmd.IsSet("read-only") && cmd.IsSet("writable") {
		return nil, fmt.Errorf("--read-only conflicts with --writable: %w", policy.ErrConflict)
	}
	devices := cmd.StringSlice("device")
	for _, d := range devices {
		if err := policy.WithDevice(d)(&specs.Spec{}); err != nil {
			return nil, fmt.Errorf("--device %s: %w", d, err)
		}
	}
	opts, err := policy.Profile(profile, devices...)
	if err != nil {
		return nil, fmt.Errorf("--profile %s: %w", profile, err)
	}
	if rootfs != "" {
		opts = append(opts, flagged("ROOTFS", policy.WithRootfs(rootfs)))
	}
	if len(argv) > 0 {
		opts = append(opts, policy.WithArgs(argv...))
	}
	if u := cmd.String("user"); u != "" {
		uid, gid, err := parseUser(u)
		if err != nil {
			return nil, fmt.Errorf("--user %q: %w", u, err)
		}
		opts = append(opts, policy.WithUser(uid, gid))
	}
	if w := cmd.String("workdir"); w != "" {
		opts = append(opts, flagged("--workdir", policy.WithCwd(w)))
	}
	for _, e := range cmd.StringSlice("env") {
		opts = append(opts, flagged("--env", policy.WithEnv(e)))
	}
	if h := cmd.String("hostname"); h != "" {
		opts = append(opts, flagged("--hostname", policy.WithHostname(h)))
	}
	if cmd.IsSet("read-only") {
		opts = append(opts, policy.WithReadonlyRootfs(cmd.Bool("read-only")))
	}
	if cmd.IsSet("writable") {
		opts = append(opts, policy.WithReadonlyRootfs(!cmd.Bool("writable")))
	}
	for _, t := range cmd.StringSlice("tmpfs") {
		dst, size, err := parseTmpfs(t)
		if err != nil {
			return nil, fmt.Errorf("--tmpfs %q: %w", t, err)
		}
		opts = append(opts, flagged("--tmpfs "+t, policy.WithTmpfs(dst, size)))
	}
	for _, v := range cmd.StringSlice("volume") {
		src, dst, ro, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("--volume %q: %w", v, err)
		}
		opts = append(opts, flagged("--volume "+v, policy.WithMount(src, dst, ro)))
	}
	if m := cmd.String("memory"); m != "" {
		n, err := parseSize(m)
		if err != nil {
			return nil, fmt.Errorf("--memory %q: %w", m, err)
		}
		opts = append(opts, flagged("--memory", policy.WithMemoryLimit(n)))
	}
	if cmd.IsSet("pids-limit") {
		opts = append(opts, flagged("--pids-limit", policy.WithPidsLimit(cmd.Int64("pids-limit"))))
	}
	for _, c := range cmd.StringSlice("cap-add") {
		opts = append(opts, flagged("--cap-add "+c, policy.WithCapabilities(c)))
	}
	for _, c := range cmd.StringSlice("cap-drop") {
		opts = append(opts, flagged("--cap-drop "+c, policy.WithoutCapabilities(c)))
	}
	if net == "host" {
		opts = append(opts, policy.WithHostNetwork())
	}
	if f := cmd.String("seccomp"); f != "" {
		sc, err := readSeccomp(f)
		if err != nil {
			return nil, fmt.Errorf("--seccomp %s: %w", f, err)
		}
		opts = append(opts, flagged("--seccomp "+f, policy.WithSeccomp(sc)))
	}
	if cmd.Bool("tty") {
		opts = append(opts, policy.WithTerminal(true))
	}
	if r := cmd.String("userns-range"); r != "" {
		rg, err := userns.ParseRange(r)
		if err != nil {
			return nil, fmt.Errorf("--userns-range %q: %w", r, err)
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

func userRun(cmd *cli.Command, rootfs string, argv []string) error {
	s, err := profileSpec(cmd, rootfs, argv)
	if err != nil {
		return err
	}
	rt := runtimeFrom(cmd)
	id := cmd.String("name")
	if id == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		id = "bw-" + hex.EncodeToString(b[:])
	} else if err := oci.ValidateID(id); err != nil {
		return fmt.Errorf("--name: %w", err)
	}
	if _, err := rt.Load(id); err == nil {
		return fmt.Errorf("--name %s: %w", id, container.ErrExist)
	}
	if err := oci.Validate(s, "", seccomp.Validate); err != nil {
		return err
	}

	// From here on the host is changed: undo it on every failure. Delete
	// (inside Run) undoes it too once the container exists.
	pool := userns.Default()
	bundle := rt.RunBundleDir(id)
	devDir := rt.RunDevDir(id)
	filesDir := rt.RunFilesDir(id)
	cleanup := func() {
		os.RemoveAll(filesDir)
		_ = pool.Release(rt.StateDir(id))
		os.RemoveAll(bundle)
		os.RemoveAll(devDir)
	}
	if !cmd.IsSet("userns-range") {
		rg, err := pool.Allocate(rt.StateDir(id))
		if err != nil {
			return fmt.Errorf("user namespace range: %w", err)
		}
		if err := policy.WithUserNamespace(rg.HostID, rg.Size)(s); err != nil {
			cleanup()
			return err
		}
	}
	if err := writeBundle(bundle, devDir, filesDir, s); err != nil {
		cleanup()
		return err
	}
	code, err := rt.Run(id, bundle, &container.RunOpts{CreateOpts: container.CreateOpts{Spec: s}, Signals: container.NotifySignals()})
	if err != nil {
		cleanup()
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

// writeBundle writes config.json beside nothing else (the rootfs stays
// where the user has it), for `bulwark state` and for people debugging.
func writeBundle(bundle, devDir, filesDir string, s *specs.Spec) error {
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if err := policy.PrepareDeviceNodes(s, devDir); err != nil {
		return fmt.Errorf("--device: %w", err)
	}
	if err := policy.WriteEtcFiles(s, filesDir); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, "config.json"), append(b, '\n'), 0o600)
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

func parseUser(u string) (uint32, uint32, error) {
	us, gs, hasG := strings.Cut(u, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, errors.New("want UID[:GID] (numbers)")
	}
	gid := uid
	if hasG {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, errors.New("want UID[:GID] (numbers)")
		}
	}
	return uint32(uid), uint32(gid), nil
}

func parseVolume(v string) (src, dst string, ro bool, err error) {
	parts := strings.Split(v, ":")
	switch {
	case len(parts) == 2:
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		ro = parts[2] == "ro"
	default:
		return "", "", false, errors.New("want SRC:DST[:ro|rw]")
	}
	if parts[0] == "" || parts[1] == "" {
		return "", "", false, errors.New("want SRC:DST[:ro|rw]")
	}
	return parts[0], parts[1], ro, nil
}

func parseTmpfs(t string) (string, int64, error) {
	dst, opts, _ := strings.Cut(t, ":")
	size := int64(policy.DefaultTmpSize)
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			v, ok := strings.CutPrefix(o, "size=")
			if !ok {
				return "", 0, fmt.Errorf("option %q: only size=N is supported", o)
			}
			n, err := parseSize(v)
			if err != nil {
				return "", 0, err
			}
			size = n
		}
	}
	return dst, size, nil
}

// parseSize reads 1024, 512k, 256m, 1g (binary units, as Docker).
func parseSize(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "ib"), "b")
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult, s = 1<<10, s[:n-1]
		case 'm':
			mult, s = 1<<20, s[:n-1]
		case 'g':
			mult, s = 1<<30, s[:n-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive number with an optional k, m or g", v)
	}
	return n * mult, nil
}
