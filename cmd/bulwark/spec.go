package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func specCommand() *cli.Command {
	return &cli.Command{
		Name: "spec", Usage: "write a template config.json",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "where to write config.json"},
			&cli.BoolFlag{Name: "rootless", Usage: "a config for a non-root user"},
			&cli.StringFlag{Name: "profile", Usage: "write a hardened config of this profile (see docs/profiles.md)"},
			&cli.StringFlag{Name: "rootfs", Usage: "with --profile: root.path to write"},
			&cli.StringSliceFlag{Name: "device", Usage: "with --profile: host device node to give the container"},
			&cli.StringFlag{Name: "image", Usage: "write a bundle of this image from the store: rootfs/ (a copy) and a hardened config.json of --profile (default: default) running its Entrypoint and Cmd"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			s := oci.Example()
			if cmd.Bool("rootless") {
				s = oci.ExampleRootless()
			}
			path := filepath.Join(cmd.String("bundle"), oci.ConfigFile)
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("spec: %s already exists, remove it first", path)
			}
			if cmd.IsSet("image") {
				// Without root the bundle is rootless as it is: --rootless
				// says nothing more. Root's bundle maps root's pool, and
				// root has no rootless ranges to write one for.
				unprivileged := isRootless(cmd)
				if cmd.IsSet("rootfs") || cmd.Bool("rootless") && !unprivileged {
					return errors.New("spec: --image writes its own rootfs, and a rootless one when run without root; --rootfs, and --rootless from root, do not go with it")
				}
				o := &userface.Options{Profile: cmd.String("profile"), Devices: cmd.StringSlice("device"),
					Image: cmd.String("image"), DataRoot: dataRoot(cmd)}
				var err error
				if s, err = userface.SpecImage(o, cmd.String("bundle"), unprivileged); err != nil {
					return err
				}
			} else if cmd.IsSet("profile") {
				var err error
				o := &userface.Options{Profile: cmd.String("profile"), Rootfs: cmd.String("rootfs"), Args: []string{"sh"}, Devices: cmd.StringSlice("device")}
				if s, err = userface.Spec(o); err != nil {
					return err
				}
				if !cmd.IsSet("rootfs") {
					s.Root.Path = "rootfs"
				}
			} else if cmd.IsSet("rootfs") || cmd.IsSet("device") {
				return errors.New("spec: --rootfs and --device go with --profile")
			}
			b, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o644)
		},
	}
}
