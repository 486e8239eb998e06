// Command bulwark is a secure-by-default OCI runtime with runc's command line.
// It holds no logic of its own: flags in, calls into pkg/ out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	_ "github.com/bulwark-sec/bulwark/internal/nsenter" // C constructor for init/exec
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/containerinit"
	"github.com/bulwark-sec/bulwark/pkg/network"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
	"github.com/bulwark-sec/bulwark/pkg/userface"
	"github.com/bulwark-sec/bulwark/pkg/usernet"
	"github.com/bulwark-sec/bulwark/pkg/vmagent"
	"github.com/bulwark-sec/bulwark/pkg/vmcontainer"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// exitCode lets a command (run, exec) return the container's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	phase.Mark("main")
	// A rootless store's helper in its user namespace (unpack, remove).
	mapped.Serve()
	// Inside a VM this binary is the guest's /init (and its child that
	// becomes the payload); neither has a command line to parse.
	if vmagent.IsAgent() {
		vmagent.Agent()
	}
	if vmagent.IsPayload() {
		vmagent.Payload()
	}
	// A VM container's init: QEMU's monitor inside the container.
	if vmcontainer.IsMonitor() {
		vmcontainer.Monitor()
	}
	// A user-mode network's keeper (--net pasta|slirp).
	if usernet.IsKeeper() {
		usernet.Keeper()
	}
	// A learning run's guard (bulwark learn killed before its end).
	if userface.IsLearnGuard() {
		userface.LearnGuard()
	}
	// The init is started as "bulwark init" after the C constructor ran:
	// skip all CLI work on that path, it is on every container's start.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		if os.Getenv(initproto.EnvInitPipe) == "" {
			fmt.Fprintln(os.Stderr, "bulwark init: internal command, started by bulwark create")
			os.Exit(2)
		}
		containerinit.Init()
		os.Exit(1)
	}
	cli.VersionPrinter = printVersion
	app := newApp(os.Args)
	if isUserRun(app, os.Args) {
		useUserRun(app)
	}
	err := app.Run(context.Background(), os.Args)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		os.Exit(int(ec))
	default:
		logError(err)
		os.Exit(1)
	}
}

func runtimeFrom(cmd *cli.Command) *container.Runtime {
	return &container.Runtime{
		Root:          cmd.String("root"),
		SystemdCgroup: cmd.Bool("systemd-cgroup"),
		Warnf:         logWarn,
		Harden:        hardenFrom(cmd),
		HardenExec:    hardenExecFrom(cmd),
		Releasers:     network.Releasers(),
		Isolation:     cmd.String("isolation"),
		VM: func(inner *specs.Spec, rootfs, stateDir string) (*specs.Spec, []container.Owned, error) {
			return vmcontainer.Wrap(inner, rootfs, stateDir, logWarn)
		},
		VMNetwork: vmcontainer.Network,
		Rootless:  isRootless(cmd),
	}
}

// newApp builds the CLI. A start gets only the command args run (see
// commandIn), anything else the whole tree.
func newApp(args []string) *cli.Command {
	app := &cli.Command{
		Name:    "bulwark",
		Usage:   "a secure-by-default OCI container runtime (runc-compatible)",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/run/bulwark", Usage: "directory for container state (rootless: $XDG_RUNTIME_DIR/bulwark)"},
			&cli.StringFlag{Name: "log", Usage: "log file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "cgroupsPath is slice:prefix:name, managed through systemd"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "run without root: true, false, or auto (when not run as root), as runc"},
			&cli.StringFlag{Name: "criu", Hidden: true, Usage: "accepted for runc compatibility"},
			&cli.BoolFlag{Name: "harden", Usage: "raise every container to the hardening floor (logged per change)"},
			&cli.StringFlag{Name: "data-root", Sources: cli.EnvVars("BULWARK_DATA_ROOT"), Usage: "directory for images (default /var/lib/bulwark for root, else ~/.local/share/bulwark)"},
			&cli.StringFlag{Name: "network-dir", Sources: cli.EnvVars("BULWARK_NETWORK_DIR"), Value: network.DefaultDir, Usage: "directory for named networks"},
			&cli.StringFlag{Name: "cni-dir", Sources: cli.EnvVars("BULWARK_CNI_DIR"), Value: network.DefaultCNIDir, Usage: "directory of the CNI config lists --net cni:NAME names"},
			&cli.StringFlag{Name: "isolation", Usage: "isolation for bundles that name none: namespace (default), vm or vm-strict (an engine's bulwark-vm runtime; docs/vm.md)"},
			&cli.StringFlag{Name: "policy", Value: policy.DefaultPolicyPath, Usage: "host policy file ({\"harden\": true, \"allow\": [...], \"pidsLimit\": N, \"memoryLimit\": \"1g\"})"},
		},
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			if err := setupLog(cmd.String("log"), cmd.String("log-format"), cmd.Bool("debug")); err != nil {
				return ctx, err
			}
			return ctx, setupRootless(cmd)
		},
	}
	if c := commandIn(app, args); c != nil {
		app.Commands = []*cli.Command{c.build()}
		return app
	}
	for _, c := range topCommands {
		app.Commands = append(app.Commands, c.build())
	}
	return app
}

type topCommand struct {
	names []string
	build func() *cli.Command
}

// topCommands are the top-level commands in help order, under the names
// they answer to (TestTopCommandNames), so that a start builds only its own.
var topCommands = []topCommand{
	{[]string{"create"}, createCommand},
	{[]string{"start"}, startCommand},
	{[]string{"run"}, runCommand},
	{[]string{"state"}, stateCommand},
	{[]string{"kill"}, killCommand},
	{[]string{"delete"}, deleteCommand},
	{[]string{"list"}, listCommand},
	{[]string{"exec"}, execCommand},
	{[]string{"spec"}, specCommand},
	{[]string{"features"}, featuresCommand},
	{[]string{"pause"}, pauseCommand},
	{[]string{"resume"}, resumeCommand},
	{[]string{"ps"}, psCommand},
	{[]string{"update"}, updateCommand},
	{[]string{"events"}, eventsCommand},
	{[]string{"checkpoint"}, checkpointCommand},
	{[]string{"restore"}, restoreCommand},
	{[]string{"install"}, installCommand},
	{[]string{"seccomp"}, seccompCommand},
	{[]string{"explain"}, explainCommand},
	{[]string{"learn"}, learnCommand},
	{[]string{"learn-recorder"}, learnRecorderCommand},
	{[]string{"audit"}, auditCommand},
	{[]string{"check"}, checkCommand},
	{[]string{"pull"}, pullCommand},
	{[]string{"load"}, loadCommand},
	{[]string{"images"}, imagesCommand},
	{[]string{"rmi"}, rmiCommand},
	{[]string{"image"}, imageCommand},
	{[]string{"network"}, networkCommand},
	{[]string{"gc"}, gcCommand},
	{[]string{"ls"}, lsCommand},
	{[]string{"logs"}, logsCommand},
	{[]string{"stop"}, stopCommand},
	{[]string{"rm"}, rmCommand},
}

// commandIn returns the top-level command args run when that is certain,
// so that a start builds and sets up that one command instead of the whole
// tree: urfave/cli gives each command of the tree a help command, a help
// flag and flag categories, and checks it for duplicate flags, on every
// start. Building and setting up the whole tree was ~0.2 ms and ~80 of
// ~425 page faults of `bulwark create/start/state/...` up to the command's
// Action, paid on each container start an engine makes (interleaved A/B,
// perf stat). The command is found, parsed and run exactly as in the whole
// tree, because everything before it is a root flag whose parse is
// certain. Any other argument list (help, --version, a typo, an unknown
// flag, a value that might not parse) gets nil and the whole tree, so its
// help, errors and suggestions are unchanged. TestWholeTree checks the
// commands a start skips.
func commandIn(app *cli.Command, args []string) *topCommand {
	i, certain := commandArg(app, args)
	if !certain || i >= len(args) {
		return nil
	}
	for j, c := range topCommands {
		if slices.Contains(c.names, args[i]) {
			return &topCommands[j]
		}
	}
	return nil
}

// commandArg skips the root flags at the start of args (after the program
// name) as urfave/cli reads them, "--name" or "-name" with "=value" or the
// next argument, and returns the index of the command name. certain is
// false if a flag is unknown, or could fail to parse: "--debug=x" might,
// and a parse error prints the root's help, which lists the commands.
func commandArg(app *cli.Command, args []string) (i int, certain bool) {
	certain = true
	for i = 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return i, certain
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, _, inline := strings.Cut(name, "=")
		switch rootFlag(app, name).(type) {
		case *cli.StringFlag:
			if !inline {
				i++
			}
		case *cli.BoolFlag:
			if inline {
				certain = false
			}
		default:
			return i, false
		}
	}
	return i, certain
}

func rootFlag(app *cli.Command, name string) cli.Flag {
	for _, f := range app.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// one, as StopOnNthArg, ends flag parsing at the first argument, the
// container id: in exec and ps what follows belongs to the command they
// run, not to bulwark.
var one = 1

// needID returns the single container id argument.
func needID(cmd *cli.Command) (string, error) {
	if cmd.Args().Len() < 1 {
		return "", fmt.Errorf("%s: missing container id", cmd.Name)
	}
	return cmd.Args().First(), nil
}

// idCommand is a command whose only argument is the container id.
func idCommand(name, usage string, do func(*container.Runtime, string) error) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "ID",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			return do(runtimeFrom(cmd), id)
		},
	}
}

// printCompactJSON writes v on one line, as runc's list and ps
// --format json do: scripts read those line by line.
func printCompactJSON(v any) error {
	return json.NewEncoder(os.Stdout).Encode(v)
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
