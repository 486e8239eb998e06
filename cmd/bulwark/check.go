package main

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/hostcheck"
	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "judge this host for containers: kernel CVEs, hardening sysctls, LSMs, cgroups, Bulwark's state and the engines' configuration",
		Flags: append(reportFlags(),
			&cli.StringFlag{Name: "root-dir", Value: "/", Usage: "read /proc/sys, /sys, /dev and /etc under this directory instead of / (a test root)"},
		),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			gate, gated, err := failOn(cmd)
			if err != nil {
				return badInput(err)
			}
			if cmd.Args().Len() != 0 {
				return badInput(errors.New("usage: bulwark check [--json] [--fail-on SEVERITY] [--root-dir DIR]"))
			}
			root := filepath.Clean(cmd.String("root-dir"))
			o := hostcheck.Options{Root: root, StateDir: cmd.String("root"), PolicyPath: cmd.String("policy")}
			if root == "/" {
				o.LandlockABI = landlock.ABI
			}
			r, err := userface.Check(o)
			if err != nil {
				return badInput(err)
			}
			return emitReport(cmd, r, gate, gated)
		},
	}
}
