package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/audit"
	"github.com/bulwark-sec/bulwark/pkg/finding"
	"github.com/bulwark-sec/bulwark/pkg/image"
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
			subs, format, err := audit.Load(target, os.Stdin)
			if err != nil && target != "-" && errors.Is(err, fs.ErrNotExist) {
				// Not a file: an image in bulwark's store, by name or ID.
				in, ierr := image.Inspect(dataRoot(cmd), target)
				if ierr != nil {
					if image.IsNotFound(ierr) {
						return badInput(fmt.Errorf("%w, and bulwark's image store has no image %q", err, target))
					}
					return badInput(fmt.Errorf("image %s: %w", target, ierr))
				}
				user := ""
				if in.Config != nil {
					user = in.Config.Config.User
				}
				var dirs []string
				for _, l := range in.Layers {
					dirs = append(dirs, l.Dir)
				}
				subs, format, err = []audit.Subject{audit.ImageSubject(target, dirs, user)}, audit.FormatImage, nil
			}
			if err != nil {
				return badInput(err)
			}
			found, err := audit.Audit(subs)
			if err != nil {
				return badInput(err)
			}
			return emitReport(cmd, finding.NewReport("audit", target, string(format), nil, found), gate, gated)
		},
	}
}
