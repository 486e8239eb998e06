package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/network"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "detach the networks of person's runs killed before their container existed",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			ids, err := network.Collect(ctx, "", "")
			for _, id := range ids {
				fmt.Println(id)
			}
			return err
		},
	}
}
