package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
)

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
				// runc: delete --force of a missing container is not an
				// error. A person's run killed before its container
				// existed may have left a network attachment under the id.
				_, err := network.Collect(ctx, cmd.String("root"), id)
				return err
			}
			return err
		},
	}
}
