package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/vmcontainer"
)

func psCommand() *cli.Command {
	return &cli.Command{
		Name: "ps", Usage: "list a container's processes (without ID: the containers, as ls)", ArgsUsage: "[ID [PS ARGS...]]", StopOnNthArg: &one,
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "table or json"},
			&cli.BoolFlag{Name: "json", Usage: "without ID: JSON"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "without ID: only names"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() == 0 {
				return personList(cmd)
			}
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			r := runtimeFrom(cmd)
			pids, err := r.PidsOf(id)
			if err != nil {
				return err
			}
			if cmd.String("format") == "json" {
				if pids == nil {
					pids = []int{}
				}
				return printCompactJSON(pids)
			}
			if cmd.String("format") != "table" {
				return fmt.Errorf("ps: --format %q is neither table nor json", cmd.String("format"))
			}
			// A VM container's processes are in the guest: its
			// namespaces and cgroup hold QEMU. JSON stays the host's
			// pids, which engines signal and wait for.
			if st, err := r.Load(id); err == nil && vmcontainer.IsVM(st.Config) {
				if cmd.Args().Len() > 1 {
					return errors.New("ps of a VM container lists the guest's processes, from its agent; ps arguments apply to host processes only (use --format json for the container's host pids)")
				}
				if s := r.Status(st); s != specs.StateRunning {
					return fmt.Errorf("ps of VM container %q: it is %s, and only a running guest's agent can list its processes (--format json lists the host pids)", id, s)
				}
				return vmPsTable(r.StateDir(id))
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

// vmPsTable prints the guest's processes of a VM container.
func vmPsTable(stateDir string) error {
	ps, err := vmcontainer.Procs(stateDir)
	if err != nil {
		return err
	}
	fmt.Printf("%-8s %-8s %-6s %-2s %s\n", "PID", "PPID", "UID", "S", "CMD")
	for _, p := range ps {
		fmt.Printf("%-8d %-8d %-6d %-2s %s\n", p.PID, p.PPID, p.UID, vmcontainer.SafeCommand(p.State), vmcontainer.SafeCommand(p.Command))
	}
	return nil
}
