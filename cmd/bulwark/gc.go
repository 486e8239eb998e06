package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/network"
)

func gcCommand() *cli.Command {
	return &cli.Command{
		Name:  "gc",
		Usage: "detach the networks of person's runs killed before their container existed, and kill the network relays of stopped containers",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			// Relays first: a stopped container's relay still holds its
			// published ports on the host.
			ids, gerr := runtimeFrom(cmd).CollectGroups()
			for _, id := range ids {
				fmt.Println(id)
			}
			if os.Geteuid() != 0 {
				// Only root attaches CNI networks (their records are
				// root's alone).
				return gerr
			}
			ids, err := network.Collect(ctx, "", "")
			for _, id := range ids {
				fmt.Println(id)
			}
			return errors.Join(gerr, err)
		},
	}
}
