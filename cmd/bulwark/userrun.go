package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

// isUserRun tells the person's run from runc's `run [-b DIR] ID`, from
// the arguments alone (never from the filesystem or the image store: a
// bare ID may name a directory, or an image, too). After the run verb it
// is the person's when
//   - a literal "--" follows (ROOTFS|IMAGE -- COMMAND, and IMAGE -- for the
//     image's own Entrypoint and Cmd);
//   - a flag only the person's run has comes before the first argument
//     (--name, -e, --rm, -t, ...);
//   - or the first argument cannot be a container ID, which runc allows to
//     hold only letters, digits, '_', '+', '-' and '.': an image reference
//     with a tag, digest or registry (alpine:3, example.com/app,
//     app@sha256:...) or a path (./rootfs, /srv/rootfs).
//
// So `bulwark run alpine` stays runc's run of the bundle's container
// "alpine", and a person writes alpine:latest, or alpine --.
func isUserRun(app *cli.Command, args []string) bool {
	i, _ := commandArg(app, args)
	if i >= len(args) || args[i] != "run" {
		return false
	}
	if slices.Contains(args[i+1:], "--") {
		return true
	}
	runc, person := flagKinds(runCommand().Flags), flagKinds(userRunFlags())
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		if !strings.HasPrefix(a, "-") || a == "-" {
			return oci.ValidateID(a) != nil
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		rv, inRunc := runc[name]
		_, inPerson := person[name]
		switch {
		case inPerson && !inRunc:
			return true
		case !inRunc:
			return false // unknown: runc's run reports it
		case rv && !inline:
			j++ // the flag's value
		}
	}
	return false
}

// flagKinds maps every name of fs to whether the flag takes a value.
func flagKinds(fs []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range fs {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
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
		&cli.StringSliceFlag{Name: "volume", Aliases: []string{"v"}, Usage: "SRC:DST[:OPT[,OPT]] bind mount, OPT ro, rw, noidmap or idmap=CONTAINERID-HOSTID-SIZE; SRC's owner appears as container root (docs/profiles.md)"},
		&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "USER[:GROUP] inside the container: numbers, or names from the image's /etc/passwd and /etc/group"},
		&cli.StringFlag{Name: "workdir", Aliases: []string{"w"}, Usage: "working directory"},
		&cli.BoolFlag{Name: "read-only", Usage: "read-only rootfs (the default of most profiles)"},
		&cli.BoolFlag{Name: "writable", Usage: "writable rootfs"},
		&cli.StringSliceFlag{Name: "tmpfs", Usage: "DST[:size=N,exec] tmpfs mount (noexec unless exec)"},
		&cli.StringFlag{Name: "memory", Aliases: []string{"m"}, Usage: "memory limit, e.g. 256m"},
		&cli.Int64Flag{Name: "pids-limit", Usage: "maximum number of tasks"},
		&cli.StringSliceFlag{Name: "cap-add", Usage: "add a capability"},
		&cli.StringSliceFlag{Name: "cap-drop", Usage: "drop a capability (ALL for all)"},
		&cli.StringSliceFlag{Name: "device", Usage: "host device node to give the container"},
		&cli.StringFlag{Name: "net", Value: "none", Usage: "none (own namespace, loopback only), host, bridge, a network's name (bulwark network ls), macvlan:IFACE, ipvlan:IFACE, dedicated:IFACE, container:NAME, cni:NAME (docs/networks.md), or pasta or slirp: a user-mode network that works without root (docs/rootless.md)"},
		&cli.StringSliceFlag{Name: "publish", Aliases: []string{"p"}, Usage: "[IP:]HOST:CONTAINER[/tcp|udp] publish a container port on the host (bridge networks)"},
		&cli.StringFlag{Name: "seccomp", Usage: "seccomp profile (OCI linux.seccomp JSON) instead of the profile's"},
		&cli.BoolFlag{Name: "log-denied", Usage: "print a line per call the seccomp filter refuses, naming the call and the rule (from the kernel's log: root; docs/learn.md)"},
		&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
		&cli.StringFlag{Name: "hostname", Usage: "container hostname"},
		&cli.StringFlag{Name: "isolation", Usage: "namespace (the default), or vm: the payload in a VM of its own inside the walls (vm-strict: refuse without real KVM; docs/vm.md)"},
		&cli.StringFlag{Name: "userns-range", Usage: "HOSTID[:SIZE]: map to this host range instead of allocating one; outside the pool and every other container's"},
		&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "run in the background and print the name (bulwark logs, stop, rm, ls)"},
		&cli.BoolFlag{Name: "rm", Usage: "remove a detached container when it exits (a foreground one always is, unless --keep)"},
		&cli.BoolFlag{Name: "keep", Usage: "keep the container after it exits, until bulwark rm"},
		&cli.StringFlag{Name: "entrypoint", Usage: "IMAGE: run this instead of the image's Entrypoint, without its Cmd"},
		&cli.StringFlag{Name: "stop-signal", Usage: "signal bulwark stop sends first (default: the image's StopSignal, else SIGTERM)"},
		&cli.StringSliceFlag{Name: "expose", Usage: "PORT[/PROTO] recorded as exposed, beside the image's ExposedPorts (bulwark ls --json)"},
		&cli.StringFlag{Name: "image-volume", Usage: "IMAGE's VOLUMEs: bind (the default: writable, in the container's own snapshot, gone with it), tmpfs (empty) or ignore"},
		&cli.StringFlag{Name: "storage-driver", Sources: cli.EnvVars(userface.EnvStorageDriver),
			Usage: "IMAGE without root: who serves the snapshot: auto (the default: the kernel's overlayfs, fuse-overlayfs where the kernel refuses it), overlay (the kernel's only) or fuse-overlayfs (Debian's fuse-overlayfs); also $BULWARK_STORAGE_DRIVER (docs/rootless.md)"},
	}
}

// personRunHelp lists the person's form and its options for `run --help`,
// which without a "--" reaches runc's form: a person asking for help must
// see their own form first, and runc's options are listed after it.
func personRunHelp() string {
	var b strings.Builder
	b.WriteString("The person's form runs COMMAND in a hardened container made from a profile\n" +
		"(docs/profiles.md); after a failure it prints a \"bulwark: hint:\" line, and\n" +
		"`bulwark explain` says what a profile does to a syscall, path or capability.\n" +
		"runc's form (the OPTIONS below) runs an OCI bundle's container as engines do.\n\n" +
		"PERSON'S OPTIONS (before ROOTFS|IMAGE):\n")
	for _, f := range userRunFlags() {
		names := f.Names()
		for i, n := range names {
			if len(n) == 1 {
				names[i] = "-" + n
			} else {
				names[i] = "--" + n
			}
		}
		usage := ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			usage = d.GetUsage()
		}
		fmt.Fprintf(&b, "   %-18s %s\n", strings.Join(names, ", "), usage)
	}
	return strings.TrimRight(b.String(), "\n")
}

func userRunCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command in a hardened container",
		ArgsUsage: "ROOTFS|IMAGE -- COMMAND [ARG...]",
		Flags:     userRunFlags(),
		// The command's own setting is the one its flags read, not the
		// app's: -e A=b,c and --tmpfs DST:exec,size=N stay one value each.
		DisableSliceFlagSeparator: true,
		// Flags end at ROOTFS|IMAGE: what follows is the command's, so that
		// `run alpine:3 ls -l` and `run IMAGE -- CMD` both work.
		StopOnNthArg: &one,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			rootfs, argv, err := splitRootfsCommand(cmd.Args().Slice())
			if err != nil {
				return err
			}
			o := userRunOptions(cmd, rootfs, argv)
			if isImageRef(rootfs) {
				o.Image, o.Rootfs, o.DataRoot = rootfs, "", dataRoot(cmd)
			} else if len(argv) == 0 {
				return fmt.Errorf("run: missing COMMAND after %s: a ROOTFS directory has no image config to take one from (usage: bulwark run [flags] ROOTFS -- COMMAND [ARG...])", rootfs)
			}
			code, err := userface.Run(runtimeFrom(cmd), o)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

// splitRootfsCommand takes ROOTFS|IMAGE [--] [CMD...] (urfave may or may
// not keep the "--" in the arguments). No command is the image's own.
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
	return rootfs, rest, nil
}

// userRunOptions is the person's request as the flags say it.
func userRunOptions(cmd *cli.Command, rootfs string, argv []string) *userface.Options {
	o := &userface.Options{
		Rootfs: rootfs, Args: argv,
		Profile: cmd.String("profile"), Name: cmd.String("name"),
		Env: cmd.StringSlice("env"), Volumes: cmd.StringSlice("volume"),
		User: cmd.String("user"), Workdir: cmd.String("workdir"),
		Tmpfs: cmd.StringSlice("tmpfs"), Memory: cmd.String("memory"),
		CapAdd: cmd.StringSlice("cap-add"), CapDrop: cmd.StringSlice("cap-drop"),
		Devices: cmd.StringSlice("device"), Net: cmd.String("net"),
		Publish: cmd.StringSlice("publish"), NetworkDir: cmd.String("network-dir"), CNIDir: cmd.String("cni-dir"),
		Seccomp: cmd.String("seccomp"), TTY: cmd.Bool("tty"),
		Hostname: cmd.String("hostname"), UsernsRange: cmd.String("userns-range"),
		StopSignal: cmd.String("stop-signal"), Expose: cmd.StringSlice("expose"),
		ImageVolumes: cmd.String("image-volume"), StorageDriver: cmd.String("storage-driver"),
		Detach: cmd.Bool("detach"), Remove: cmd.Bool("rm"), Keep: cmd.Bool("keep"),
		Isolation: cmd.String("isolation"), LogDenied: cmd.Bool("log-denied"),
	}
	if cmd.IsSet("entrypoint") {
		v := cmd.String("entrypoint")
		o.Entrypoint = &v
	}
	if cmd.IsSet("read-only") {
		v := cmd.Bool("read-only")
		o.ReadOnly = &v
	}
	if cmd.IsSet("writable") {
		v := cmd.Bool("writable")
		o.Writable = &v
	}
	if cmd.IsSet("pids-limit") {
		v := cmd.Int64("pids-limit")
		o.PidsLimit = &v
	}
	return o
}

// isImageRef tells an image in the store from a rootfs directory: a path
// that starts with / or . is a directory, and so is any existing one.
func isImageRef(arg string) bool {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return false
	}
	fi, err := os.Stat(arg)
	return err != nil || !fi.IsDir()
}
