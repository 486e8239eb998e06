package main

import (
	"context"
	"errors"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/audit"
	"github.com/bulwark-sec/bulwark/pkg/finding"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "score a container's configuration and image before it runs (OCI bundle or config.json, docker/podman inspect JSON, Kubernetes YAML, rootfs dir; - reads stdin)",
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
			subs, format, err := audit.Load(target, os.Stdin)
			if err != nil {
				return badInput(err)
			}
			fs, err := audit.Audit(subs)
			if err != nil {
				return badInput(err)
			}
			return emitReport(cmd, finding.NewReport("audit", target, string(format), nil, fs), gate, gated)
		},
	}
}
