package main

import (
	"context"
	"fmt"
	"os"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

func learnCommand() *cli.Command {
	flags := append(userRunFlags(),
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "learned.json", Usage: "the profile file to write (bulwark run --profile FILE uses it)"},
		&cli.BoolFlag{Name: "merge", Usage: "add this run to the profile already in --output"},
		&cli.DurationFlag{Name: "duration", Usage: "end the workload (SIGTERM) after this long, e.g. 30s, while you exercise it"},
		&cli.BoolFlag{Name: "no-cap-trials", Usage: "keep every capability the profile grants instead of trying the workload without each"},
	)
	return &cli.Command{
		Name:                      "learn",
		Usage:                     "run a command once under a recording filter and write the least-privilege profile it needs (docs/learn.md)",
		ArgsUsage:                 "ROOTFS|IMAGE -- COMMAND [ARG...]",
		Flags:                     flags,
		DisableSliceFlagSeparator: true,
		StopOnNthArg:              &one,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			rootfs, argv, err := splitRootfsCommand(cmd.Args().Slice())
			if err != nil {
				return err
			}
			o := &userface.LearnOptions{
				Run: *userRunOptions(cmd, rootfs, argv), Output: cmd.String("output"), Merge: cmd.Bool("merge"),
				Duration: cmd.Duration("duration"), NoCapTrials: cmd.Bool("no-cap-trials"),
			}
			if isImageRef(rootfs) {
				o.Run.Image, o.Run.Rootfs, o.Run.DataRoot = rootfs, "", dataRoot(cmd)
			} else if len(argv) == 0 {
				return fmt.Errorf("learn: missing COMMAND after %s (usage: bulwark learn [flags] ROOTFS -- COMMAND [ARG...])", rootfs)
			}
			res, err := userface.Learn(runtimeFrom(cmd), o, os.Stderr)
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(os.Stderr, "bulwark: learn: warning: "+w)
			}
			fmt.Fprintf(os.Stderr, "bulwark: learn: wrote %s\n", o.Output)
			for _, l := range res.Profile.Summary() {
				fmt.Fprintln(os.Stderr, "  "+l)
			}
			return nil
		},
	}
}

// learnRecorderCommand is what create starts for an engine's container
// annotated run.bulwark.learn=PATH (pkg/container startRecorder); not for
// people, hence hidden.
func learnRecorderCommand() *cli.Command {
	return &cli.Command{
		Name:      "learn-recorder",
		Hidden:    true,
		ArgsUsage: "ID",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Len() != 1 {
				return fmt.Errorf("usage: bulwark learn-recorder ID")
			}
			return userface.RecordForEngine(runtimeFrom(cmd), cmd.Args().First())
		},
	}
}
