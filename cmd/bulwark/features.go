package main

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

func featuresCommand() *cli.Command {
	return &cli.Command{
		Name: "features", Usage: "print the runtime's features (runtime-spec features.md)",
		Action: func(ctx context.Context, cmd *cli.Command) error { return printJSON(oci.Features(seccomp.Support())) },
	}
}
