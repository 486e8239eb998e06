package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"
)

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
