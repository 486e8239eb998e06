package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/image"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "fetch an image from a registry into bulwark's store (auth from ~/.docker/config.json)",
		ArgsUsage: "REF",
		Flags:     []cli.Flag{quietFlag()},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("usage: bulwark pull [--quiet] REF")
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			im, err := image.Pull(ctx, dataRoot(cmd), cmd.Args().First(), imageOptions(cmd))
			if err != nil {
				return err
			}
			fmt.Println(im.Names[0])
			return nil
		},
	}
}

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress lines"}
}

// dataRoot is where images are kept (--data-root, BULWARK_DATA_ROOT).
func dataRoot(cmd *cli.Command) string {
	if d := cmd.String("data-root"); d != "" {
		return d
	}
	return image.DefaultDataRoot()
}

// imageOptions prints progress as plain lines on stderr: a bar is for a
// later change.
func imageOptions(cmd *cli.Command) image.Options {
	var o image.Options
	if !cmd.Bool("quiet") {
		o.Progress = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	return o
}
