package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

var one = 1

// needID returns the single container id argument.
func needID(cmd *cli.Command) (string, error) {
	if cmd.Args().Len() < 1 {
		return "", fmt.Errorf("%s: missing container id", cmd.Name)
	}
	return cmd.Args().First(), nil
}

func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory (holds config.json)"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the init's pid here"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "use MS_MOVE and chroot instead of pivot_root"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for runc compatibility"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass fds 3..3+N-1 to the container"},
	}
}

func createOpts(cmd *cli.Command) container.CreateOpts {
	return container.CreateOpts{
		PidFile:       cmd.String("pid-file"),
		ConsoleSocket: cmd.String("console-socket"),
		NoPivot:       cmd.Bool("no-pivot"),
		PreserveFds:   cmd.Int("preserve-fds"),
	}
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a container", ArgsUsage: "ID", StopOnNthArg: &one,
		Flags: createFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			o := createOpts(cmd)
			return runtimeFrom(cmd).Create(id, cmd.String("bundle"), &o)
		},
	}
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

func startCommand() *cli.Command {
	return idCommand("start", "start a created container", (*container.Runtime).Start)
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name: "run", Usage: "create and start a container", ArgsUsage: "ID", StopOnNthArg: &one,
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the container"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the container after it exits"},
			&cli.BoolFlag{Name: "no-subreaper", Usage: "accepted for runc compatibility"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			o := &container.RunOpts{CreateOpts: createOpts(cmd), Detach: cmd.Bool("detach"), Keep: cmd.Bool("keep")}
			if !o.Detach {
				o.Signals = container.NotifySignals()
			}
			code, err := runtimeFrom(cmd).Run(id, cmd.String("bundle"), o)
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

func stateCommand() *cli.Command {
	return &cli.Command{
		Name: "state", Usage: "print a container's OCI state", ArgsUsage: "ID",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			r := runtimeFrom(cmd)
			st, err := r.Load(id)
			if err != nil {
				return err
			}
			return printJSON(stateJSON(r, st))
		},
	}
}

// runcState is runc's state output: the OCI state plus runc's extra fields
// (rootfs, created, owner), which engines and scripts read.
type runcState struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func stateJSON(r *container.Runtime, st *container.State) runcState {
	o := r.OCIState(st)
	owner := st.Owner
	if owner == "0" {
		owner = "root"
	}
	return runcState{OCIVersion: o.Version, ID: o.ID, Pid: o.Pid, Status: string(o.Status), Bundle: o.Bundle,
		Rootfs: st.Rootfs, Created: st.Created, Owner: owner, Annotations: o.Annotations}
}

func killCommand() *cli.Command {
	return &cli.Command{
		Name: "kill", Usage: "send a signal to a container's init (or all its processes)", ArgsUsage: "ID [SIGNAL]",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "signal every process in the container"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			sig := unix.SIGTERM
			if cmd.Args().Len() > 1 {
				if sig, err = parseSignal(cmd.Args().Get(1)); err != nil {
					return err
				}
			}
			return runtimeFrom(cmd).Kill(id, sig, cmd.Bool("all"))
		},
	}
}

// parseSignal accepts 9, KILL, SIGKILL and kill, like runc.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("kill: invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return 0, fmt.Errorf("kill: unknown signal %q", s)
	}
	return sig, nil
}

func deleteCommand() *cli.Command {
	return &cli.Command{
		Name: "delete", Usage: "delete a stopped container", ArgsUsage: "ID",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill the container first if it is running"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			err = runtimeFrom(cmd).Delete(id, cmd.Bool("force"))
			if cmd.Bool("force") && errors.Is(err, container.ErrNotExist) {
				// runc: delete --force of a missing container is not an error.
				return nil
			}
			return err
		},
	}
}

func listCommand() *cli.Command {
	return &cli.Command{
		Name: "list", Aliases: []string{"ls"}, Usage: "list containers",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only ids"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			r := runtimeFrom(cmd)
			sts, err := r.List()
			if err != nil {
				return err
			}
			out := make([]runcState, 0, len(sts))
			for _, st := range sts {
				out = append(out, stateJSON(r, st))
			}
			if cmd.Bool("quiet") {
				for _, s := range out {
					fmt.Println(s.ID)
				}
				return nil
			}
			switch cmd.String("format") {
			case "json":
				return printJSON(out)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
				for _, s := range out {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("list: --format %q is neither table nor json", cmd.String("format"))
			}
		},
	}
}

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a process in a running container", ArgsUsage: "ID [COMMAND [ARG...]]", StopOnNthArg: &one,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json (OCI process) to run"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable"},
			&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "UID[:GID]"},
			&cli.StringSliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional group ids"},
			&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability"},
			&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the process"},
			&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid here"},
			&cli.IntFlag{Name: "preserve-fds", Usage: "pass fds 3..3+N-1 to the process"},
			&cli.StringFlag{Name: "process-label", Hidden: true},
			&cli.StringFlag{Name: "apparmor", Hidden: true},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			r := runtimeFrom(cmd)
			st, err := r.Load(id)
			if err != nil {
				return err
			}
			p, err := execProcess(cmd, st.Config)
			if err != nil {
				return err
			}
			o := &container.ExecOpts{
				Process: p, PidFile: cmd.String("pid-file"), ConsoleSocket: cmd.String("console-socket"),
				Detach: cmd.Bool("detach"), PreserveFds: cmd.Int("preserve-fds"),
			}
			if !o.Detach {
				// The process exits after this command: nothing to unregister.
				o.Signals = container.NotifySignals()
			}
			code, err := r.Exec(id, o)
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

// execProcess builds the exec'd process: --process, or the container's own
// process with the command line's overrides, as runc does.
func execProcess(cmd *cli.Command, spec *specs.Spec) (*specs.Process, error) {
	if path := cmd.String("process"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--process: %w", err)
		}
		p := new(specs.Process)
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", path, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("--process %s: args: empty", path)
		}
		return p, nil
	}
	if cmd.Args().Len() < 2 {
		return nil, errors.New("exec: missing command (or --process FILE)")
	}
	var p specs.Process
	if spec != nil && spec.Process != nil {
		p = *spec.Process
	}
	p.Args = cmd.Args().Slice()[1:]
	p.Terminal = cmd.Bool("tty")
	p.ConsoleSize = nil
	p.Env = append(append([]string(nil), p.Env...), cmd.StringSlice("env")...)
	if c := cmd.String("cwd"); c != "" {
		p.Cwd = c
	}
	if u := cmd.String("user"); u != "" {
		user, err := userface.ParseUser(u)
		if err != nil {
			return nil, fmt.Errorf("exec: --user %q: %w", u, err)
		}
		p.User.UID, p.User.GID = user.UID, user.GIDOr(p.User.GID)
	}
	for _, g := range cmd.StringSlice("additional-gids") {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("exec: --additional-gids %q: not a number", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
	}
	if add := cmd.StringSlice("cap"); len(add) > 0 {
		c := &specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			cc := *p.Capabilities
			c = &cc
		}
		for _, name := range add {
			name = oci.CapabilityName(name)
			c.Bounding = append(c.Bounding, name)
			c.Effective = append(c.Effective, name)
			c.Permitted = append(c.Permitted, name)
			c.Inheritable = append(c.Inheritable, name)
			c.Ambient = append(c.Ambient, name)
		}
		p.Capabilities = c
	}
	if cmd.Bool("no-new-privs") {
		p.NoNewPrivileges = true
	}
	return &p, nil
}

func specCommand() *cli.Command {
	return &cli.Command{
		Name: "spec", Usage: "write a template config.json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "where to write config.json"},
			&cli.BoolFlag{Name: "rootless", Usage: "a config for a non-root user"},
			&cli.StringFlag{Name: "profile", Usage: "write a hardened config of this profile (see docs/profiles.md)"},
			&cli.StringFlag{Name: "rootfs", Usage: "with --profile: root.path to write"},
			&cli.StringSliceFlag{Name: "device", Usage: "with --profile: host device node to give the container"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			s := oci.Example()
			if cmd.Bool("rootless") {
				s = oci.ExampleRootless()
			}
			if cmd.IsSet("profile") {
				var err error
				o := &userface.Options{Profile: cmd.String("profile"), Rootfs: cmd.String("rootfs"), Args: []string{"sh"}, Devices: cmd.StringSlice("device")}
				if s, err = userface.Spec(o); err != nil {
					return err
				}
				if !cmd.IsSet("rootfs") {
					s.Root.Path = "rootfs"
				}
			} else if cmd.IsSet("rootfs") || cmd.IsSet("device") {
				return errors.New("spec: --rootfs and --device go with --profile")
			}
			path := filepath.Join(cmd.String("bundle"), oci.ConfigFile)
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("spec: %s already exists, remove it first", path)
			}
			b, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o644)
		},
	}
}

func featuresCommand() *cli.Command {
	return &cli.Command{
		Name: "features", Usage: "print the runtime's features (runtime-spec features.md)",
		Action: func(ctx context.Context, cmd *cli.Command) error { return printJSON(oci.Features(seccomp.Support())) },
	}
}

func pauseCommand() *cli.Command {
	return idCommand("pause", "freeze all processes of a container", (*container.Runtime).Pause)
}

func resumeCommand() *cli.Command {
	return idCommand("resume", "thaw a paused container", (*container.Runtime).Resume)
}

func psCommand() *cli.Command {
	return &cli.Command{
		Name: "ps", Usage: "list a container's processes", ArgsUsage: "ID [PS ARGS...]", StopOnNthArg: &one,
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			pids, err := runtimeFrom(cmd).PidsOf(id)
			if err != nil {
				return err
			}
			if cmd.String("format") == "json" {
				if pids == nil {
					pids = []int{}
				}
				return printJSON(pids)
			}
			if cmd.String("format") != "table" {
				return fmt.Errorf("ps: --format %q is neither table nor json", cmd.String("format"))
			}
			return psTable(pids, cmd.Args().Slice()[1:])
		},
	}
}

// psTable runs the host's ps and keeps the header and the container's rows,
// as runc does, so `docker top` gets familiar columns.
func psTable(pids []int, args []string) error {
	if len(args) == 0 {
		args = []string{"-ef"}
	}
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps: no PID column in ps output")
	}
	in := map[string]bool{}
	for _, p := range pids {
		in[strconv.Itoa(p)] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if col < len(f) && in[f[col]] {
			fmt.Println(l)
		}
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
