package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"
)

func rmiCommand() *cli.Command {
	return &cli.Command{
		Name:      "rmi",
		Usage:     "remove images (a name untags; the image and its unused layers go with its last name)",
		ArgsUsage: "REF...",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() == 0 {
				return errors.New("usage: bulwark rmi REF (one or more)")
			}
			rs, freed, err := imagesOf(cmd).Remove(cmd.Args().Slice())
			for _, r := range rs {
				if r.Untagged != "" {
					fmt.Printf("Untagged: %s\n", r.Untagged)
				}
				if r.Deleted != "" {
					fmt.Printf("Deleted: %s\n", r.Deleted)
				}
			}
			if freed > 0 {
				fmt.Printf("Removed %d unused layers\n", freed)
			}
			return err
		},
	}
}
