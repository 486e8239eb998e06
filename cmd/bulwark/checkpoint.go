package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// errNoCheckpoint is what checkpoint and restore answer: engines call them
// (docker checkpoint, podman container checkpoint) and must get a clear
// refusal rather than "unknown command" and a usage dump.
var errNoCheckpoint = errors.New("checkpoint/restore (CRIU) is not supported by bulwark: restoring a process image would bypass the namespace, seccomp and capability setup the runtime enforces at create; stop and re-create the container instead")

func checkpointCommand() *cli.Command { return noCRIUCommand("checkpoint") }
func restoreCommand() *cli.Command    { return noCRIUCommand("restore") }

// noCRIUCommand accepts runc's flags so an engine's call reaches the error
// above instead of failing on an unknown flag.
func noCRIUCommand(name string) *cli.Command {
	flags := func() []cli.Flag {
		var fs []cli.Flag
		for _, n := range []string{"image-path", "work-path", "parent-path", "page-server", "manage-cgroups-mode", "empty-ns", "bundle", "console-socket", "pid-file", "lsm-profile", "lsm-mount-context"} {
			fs = append(fs, &cli.StringFlag{Name: n, Hidden: true})
		}
		for _, n := range []string{"leave-running", "tcp-established", "ext-unix-sk", "shell-job", "lazy-pages", "file-locks", "pre-dump", "auto-dedup", "detach", "no-subreaper", "no-pivot", "tcp-close", "link-remap"} {
			fs = append(fs, &cli.BoolFlag{Name: n, Hidden: true})
		}
		fs = append(fs, &cli.IntFlag{Name: "status-fd", Hidden: true})
		return fs
	}
	action := func(ctx context.Context, cmd *cli.Command) error { return errNoCheckpoint }
	return &cli.Command{Name: name, Usage: "not supported (CRIU " + name + ")", ArgsUsage: "ID", Flags: flags(), Action: action}
}
