package main

import (
	"context"
	"os"
	"strconv"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func createFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Value: ".", Usage: "bundle directory (holds config.json)"},
		&cli.StringFlag{Name: "console-socket", Usage: "unix socket that receives the pty master"},
		&cli.StringFlag{Name: "pidfd-socket", Usage: "unix socket that receives a pidfd of the container's init"},
		&cli.StringFlag{Name: "pid-file", Usage: "write the init's pid here"},
		&cli.BoolFlag{Name: "no-pivot", Usage: "use MS_MOVE and chroot instead of pivot_root"},
		&cli.BoolFlag{Name: "no-new-keyring", Usage: "accepted for runc compatibility"},
		&cli.IntFlag{Name: "preserve-fds", Usage: "pass N more fds to the container: 3..3+N-1, after any of systemd's LISTEN_FDS"},
	}
}

func createOpts(cmd *cli.Command) container.CreateOpts {
	return container.CreateOpts{
		PidFile:       cmd.String("pid-file"),
		ConsoleSocket: cmd.String("console-socket"),
		PidfdSocket:   cmd.String("pidfd-socket"),
		NoPivot:       cmd.Bool("no-pivot"),
		PreserveFds:   cmd.Int("preserve-fds"),
		ListenFds:     listenFds(),
	}
}

// listenFds is how many socket-activation fds systemd passed this process
// (LISTEN_FDS, for LISTEN_PID = our pid), which go to the container ahead
// of --preserve-fds, as runc passes them.
func listenFds() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return 0
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func createCommand() *cli.Command {
	return &cli.Command{
		Name: "create", Usage: "create a container", ArgsUsage: "ID", StopOnNthArg: &one,
		Flags: createFlags(),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			o := createOpts(cmd)
			return runtimeFrom(cmd).Create(id, cmd.String("bundle"), &o)
		},
	}
}
