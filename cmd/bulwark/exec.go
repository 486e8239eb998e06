package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/userface"
	"github.com/bulwark-sec/bulwark/pkg/vmcontainer"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name: "exec", Usage: "run a process in a running container", ArgsUsage: "ID [COMMAND [ARG...]]", StopOnNthArg: &one,
		// As runc: a comma is part of the value ("cpu,cpuacct:sub", an
		// --env value), one flag per item.
		DisableSliceFlagSeparator: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "process", Aliases: []string{"p"}, Usage: "process.json (OCI process) to run"},
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "allocate a pseudo-terminal"},
			&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
			&cli.StringFlag{Name: "pidfd-socket", Usage: "unix socket that receives a pidfd of the process"},
			&cli.StringSliceFlag{Name: "env", Aliases: []string{"e"}, Usage: "set an environment variable"},
			&cli.StringFlag{Name: "cwd", Usage: "working directory in the container"},
			&cli.StringFlag{Name: "user", Aliases: []string{"u"}, Usage: "USER[:GROUP], numbers or names from the container's /etc/passwd and /etc/group"},
			&cli.StringSliceFlag{Name: "additional-gids", Aliases: []string{"g"}, Usage: "additional group ids"},
			&cli.StringSliceFlag{Name: "cap", Aliases: []string{"c"}, Usage: "add a capability"},
			&cli.BoolFlag{Name: "no-new-privs", Usage: "set no_new_privs"},
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the process"},
			&cli.StringFlag{Name: "pid-file", Usage: "write the process's pid here"},
			&cli.IntFlag{Name: "preserve-fds", Usage: "pass fds 3..3+N-1 to the process"},
			&cli.StringSliceFlag{Name: "cgroup", Usage: "run the process in an existing sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH"},
			&cli.BoolFlag{Name: "ignore-paused", Usage: "exec into a paused container too (the process waits for resume)"},
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
				return execFailed(err)
			}
			if vmcontainer.IsVM(st.Config) {
				return vmExec(cmd, r, st)
			}
			p, err := execProcess(cmd, st.Config, st.Rootfs)
			if err != nil {
				return execFailed(err)
			}
			sub, err := cgroups.ParseSubCgroups(cmd.StringSlice("cgroup"))
			if err != nil {
				return execFailed(err)
			}
			o := &container.ExecOpts{
				IgnorePaused: cmd.Bool("ignore-paused"), SubCgroups: sub,
				Process: p, PidFile: cmd.String("pid-file"), ConsoleSocket: cmd.String("console-socket"), PidfdSocket: cmd.String("pidfd-socket"),
				Detach: cmd.Bool("detach"), PreserveFds: cmd.Int("preserve-fds"),
			}
			if !o.Detach {
				// The process exits after this command: nothing to unregister.
				o.Signals = container.NotifySignals()
			}
			code, err := r.Exec(id, o)
			if err != nil {
				return execFailed(err)
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

// execFailed reports an exec that never ran its process and exits 255, as
// runc does: 1 would be indistinguishable from the process's own exit 1.
// vmExec runs the process in the guest of a VM container, through its
// agent: the container's namespaces hold QEMU, not the payload.
func vmExec(cmd *cli.Command, r *container.Runtime, st *container.State) error {
	if cmd.Int("preserve-fds") > 0 || len(cmd.StringSlice("cgroup")) > 0 {
		return execFailed(errors.New("exec into a VM container: --preserve-fds and --cgroup are not supported yet"))
	}
	if r.Status(st) != specs.StateRunning {
		return execFailed(fmt.Errorf("container %q is %s, not running", st.ID, r.Status(st)))
	}
	inner, err := vmcontainer.InnerSpec(r.StateDir(st.ID))
	if err != nil {
		return execFailed(err)
	}
	p, err := execProcess(cmd, inner.Spec, oci.RootfsPath(st.Bundle, inner.Spec))
	if err != nil {
		return execFailed(err)
	}
	// As for a namespace container, --console-socket matters only with a
	// terminal, and a detached terminal needs it.
	sock := cmd.String("console-socket")
	if p.Terminal && sock == "" && cmd.Bool("detach") {
		return execFailed(errors.New("exec: a terminal with --detach needs --console-socket"))
	}
	var tty *os.File
	if p.Terminal && sock != "" {
		if tty, err = vmcontainer.OpenConsole(sock, p.ConsoleSize); err != nil {
			return execFailed(err)
		}
		defer tty.Close()
	}
	if cmd.Bool("detach") {
		self, err := os.Executable()
		if err != nil {
			return execFailed(err)
		}
		pid, err := vmcontainer.StartRelay(self, r.Root, st.ID, p, tty)
		if err != nil {
			return execFailed(err)
		}
		if f := cmd.String("pid-file"); f != "" {
			if err := container.WritePidFile(f, pid); err != nil {
				return execFailed(err)
			}
		}
		return nil
	}
	var stdin io.Reader = os.Stdin
	var stdout, stderr io.Writer = os.Stdout, os.Stderr
	if tty != nil {
		stdin, stdout, stderr = tty, tty, tty
	}
	code, err := vmcontainer.Exec(r.StateDir(st.ID), p, stdin, stdout, stderr, container.NotifySignals().C)
	if err != nil {
		return execFailed(err)
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func execFailed(err error) error {
	logError(err)
	return exitCode(255)
}

// execProcess builds the exec'd process: --process, or the container's own
// process with the command line's overrides, as runc does.
func execProcess(cmd *cli.Command, spec *specs.Spec, rootfs string) (*specs.Process, error) {
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
		if err == nil {
			user, err = user.Resolve(rootfs)
		}
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
			// Never inheritable (CVE-2022-29162: it would survive an
			// execve by a non-root user). Ambient only when the process
			// already has an inheritable set, as runc does: without it
			// the kernel refuses the ambient raise anyway.
			if c.Inheritable != nil {
				c.Ambient = append(c.Ambient, name)
			}
		}
		p.Capabilities = c
	}
	if cmd.Bool("no-new-privs") {
		p.NoNewPrivileges = true
	}
	return &p, nil
}
