package main

import (
	"context"
	"errors"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "score a container's configuration and image before it runs (OCI bundle or config.json, docker/podman inspect JSON, Kubernetes YAML, rootfs dir, an image in bulwark's store; - reads stdin)",
		ArgsUsage: "TARGET",
		Flags:     reportFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			gate, gated, err := failOn(cmd)
			if err != nil {
				return badInput(err)
			}
			if cmd.Args().Len() != 1 {
				return badInput(errors.New("usage: bulwark audit [--json] [--fail-on SEVERITY] TARGET"))
			}
			target := cmd.Args().First()
			r, err := userface.Audit(target, os.Stdin, dataRoot(cmd))
			if err != nil {
				return badInput(err)
			}
			return emitReport(cmd, r, gate, gated)
		},
	}
}
