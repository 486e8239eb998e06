package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "inspect and prune images in bulwark's store",
		Commands: []*cli.Command{
			{
				Name:      "inspect",
				Usage:     "print an image's record, config and layer directories as JSON",
				ArgsUsage: "REF",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if cmd.Args().Len() != 1 {
						return errors.New("usage: bulwark image inspect REF")
					}
					in, err := imagesOf(cmd).Inspect(cmd.Args().First())
					if err != nil {
						return err
					}
					return printJSON(in)
				},
			},
			{
				Name:  "prune",
				Usage: "remove images without a name, unused layers and what interrupted pulls left",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					removed, freed, err := imagesOf(cmd).Prune()
					for _, id := range removed {
						fmt.Printf("Deleted: %s\n", id)
					}
					fmt.Printf("Removed %d unused layers\n", freed)
					return err
				},
			},
		},
	}
}
