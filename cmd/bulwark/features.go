package main

import (
	"context"
	"maps"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func featuresCommand() *cli.Command {
	return &cli.Command{
		Name: "features", Usage: "print the runtime's features (runtime-spec features.md)",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			f := oci.Features(seccomp.Support())
			maps.Copy(f.Annotations, userface.VMFeatures())
			return printJSON(f)
		},
	}
}
