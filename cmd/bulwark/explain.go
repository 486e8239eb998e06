package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "what a profile does to a syscall, a path in the container or a capability, and the flag that changes it",
		ArgsUsage: "SYSCALL|PATH|CAP",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Value: "default", Usage: "the profile to explain"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("usage: bulwark explain [--profile P] SYSCALL|PATH|CAP")
			}
			lines, err := userface.Explain(cmd.String("profile"), cmd.Args().First())
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Println(l)
			}
			return nil
		},
	}
}
