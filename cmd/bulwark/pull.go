package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "fetch an image from a registry into bulwark's store (auth from ~/.docker/config.json)",
		ArgsUsage: "REF",
		Flags: []cli.Flag{quietFlag(), &cli.DurationFlag{Name: "timeout", Value: userface.DefaultPullTimeout, Sources: cli.EnvVars("BULWARK_PULL_TIMEOUT"),
			Usage: "give up when the registry sends nothing for this long (30s, 2m), naming the manifest or layer it stalled in"}},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return errors.New("usage: bulwark pull [--quiet] [--timeout DURATION] REF")
			}
			if cmd.Duration("timeout") <= 0 {
				return fmt.Errorf("pull --timeout %v: must be more than zero", cmd.Duration("timeout"))
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			s := imagesOf(cmd)
			s.Timeout = cmd.Duration("timeout")
			im, err := s.Pull(ctx, cmd.Args().First())
			if err != nil {
				return err
			}
			fmt.Println(im.Names[0])
			return nil
		},
	}
}

func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars or lines"}
}

// dataRoot is where images are kept: --data-root (BULWARK_DATA_ROOT), or
// the person face's default for this user.
func dataRoot(cmd *cli.Command) string {
	return userface.Images{DataRoot: cmd.String("data-root")}.Root()
}

// imagesOf is the person's image store, showing progress on stderr unless
// --quiet: a bar per layer on a terminal, plain lines otherwise (a log or
// CI keeps them readable).
func imagesOf(cmd *cli.Command) userface.Images {
	s := userface.Images{DataRoot: dataRoot(cmd)}
	switch {
	case cmd.Bool("quiet"):
	case isTerminal(os.Stderr):
		s.Bars = true
	default:
		s.Progress = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	return s
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
