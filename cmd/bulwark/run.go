package main

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name: "run", Usage: "run a command in a hardened container, or (runc's form) create and start a bundle's container",
		UsageText: "bulwark run [person's options] ROOTFS|IMAGE -- COMMAND [ARG...]\n" +
			"   bulwark run [runc's options] ID        (no \"--\": the OCI bundle in --bundle, as runc runs it)",
		Description:  personRunHelp(),
		ArgsUsage:    "ID",
		StopOnNthArg: &one,
		Flags: append(createFlags(),
			&cli.BoolFlag{Name: "detach", Aliases: []string{"d"}, Usage: "do not wait for the container"},
			&cli.BoolFlag{Name: "keep", Usage: "keep the container after it exits"},
			&cli.BoolFlag{Name: "no-subreaper", Usage: "accepted for runc compatibility"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			o := &container.RunOpts{CreateOpts: createOpts(cmd), Detach: cmd.Bool("detach"), Keep: cmd.Bool("keep")}
			if !o.Detach {
				o.Signals = container.NotifySignals()
			}
			code, err := runtimeFrom(cmd).Run(id, cmd.String("bundle"), o)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}
