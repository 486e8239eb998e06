package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
)

func loadCommand() *cli.Command {
	return &cli.Command{
		Name:  "load",
		Usage: "load images from a docker-archive (docker save), an OCI archive or an OCI layout directory",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Aliases: []string{"i"}, Usage: "archive or layout directory (default: stdin)"},
			quietFlag(),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 0 {
				return errors.New("usage: bulwark load [-i FILE] [--quiet] (or: docker save IMAGE | bulwark load)")
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			ims, err := imagesOf(cmd).Load(ctx, cmd.String("input"), os.Stdin)
			for _, im := range ims {
				if len(im.Names) == 0 {
					fmt.Printf("Loaded image ID: %s\n", im.ID)
				}
				for _, n := range im.Names {
					fmt.Printf("Loaded image: %s\n", n)
				}
			}
			return err
		},
	}
}
