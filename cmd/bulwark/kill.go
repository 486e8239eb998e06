package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
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

// parseSignal accepts 9, KILL, SIGKILL and kill, like runc, and 0, which
// signals nothing and only asks whether the container is running (a
// liveness probe's `kill ID 0`).
func parseSignal(s string) (unix.Signal, error) {
	if s == "0" {
		return 0, nil
	}
	sig, err := container.ParseSignal(s)
	if err != nil {
		return 0, fmt.Errorf("kill: %w", err)
	}
	return sig, nil
}
