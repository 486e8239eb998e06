// Command bulwark is a secure-by-default OCI runtime with runc's command line.
// It holds no logic of its own: flags in, calls into pkg/ out.
package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"os"

	"github.com/urfave/cli/v3"

	_ "github.com/bulwark-sec/bulwark/internal/nsenter" // C constructor for init/exec
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/linux"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "0.1.0-dev"

// exitCode lets a command (run, exec) return the container's status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	phase.Mark("main")
	// The init is started as "bulwark init" after the C constructor ran:
	// skip all CLI work on that path, it is on every container's start.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		if os.Getenv(linux.EnvInitPipe) == "" {
			fmt.Fprintln(os.Stderr, "bulwark init: internal command, started by bulwark create")
			os.Exit(2)
		}
		linux.Init()
		os.Exit(1)
	}
	app := newApp()
	if isUserRun(os.Args) {
		useUserRun(app)
	}
	err := app.Run(context.Background(), os.Args)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		os.Exit(int(ec))
	default:
		logError(err)
		os.Exit(1)
	}
}

func runtimeFrom(cmd *cli.Command) *container.Runtime {
	return &container.Runtime{
		Root:          cmd.String("root"),
		SystemdCgroup: cmd.Bool("systemd-cgroup"),
		Warnf:         logWarn,
		Harden:        hardenFrom(cmd),
	}
}

func newApp() *cli.Command {
	return &cli.Command{
		Name:    "bulwark",
		Usage:   "a secure-by-default OCI container runtime (runc-compatible)",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Value: "/run/bulwark", Usage: "directory for container state"},
			&cli.StringFlag{Name: "log", Usage: "log file (default: stderr)"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json"},
			&cli.BoolFlag{Name: "debug", Usage: "log debug messages"},
			&cli.BoolFlag{Name: "systemd-cgroup", Usage: "cgroupsPath is slice:prefix:name, managed through systemd"},
			&cli.StringFlag{Name: "rootless", Value: "auto", Usage: "accepted for runc compatibility"},
			&cli.StringFlag{Name: "criu", Hidden: true, Usage: "accepted for runc compatibility"},
			&cli.BoolFlag{Name: "harden", Usage: "raise every container to the hardening floor (logged per change)"},
			&cli.StringFlag{Name: "policy", Value: policy.DefaultPolicyPath, Usage: "host policy file ({\"harden\": true, \"allow\": [...], \"pidsLimit\": N})"},
		},
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			return ctx, setupLog(cmd.String("log"), cmd.String("log-format"), cmd.Bool("debug"))
		},
		Commands: []*cli.Command{
			createCommand(), startCommand(), runCommand(), stateCommand(), killCommand(),
			deleteCommand(), listCommand(), execCommand(), specCommand(), featuresCommand(),
			pauseCommand(), resumeCommand(), psCommand(),
			updateCommand(), eventsCommand(), checkpointCommand(), restoreCommand(), installCommand(),
			seccompCommand(),
		},
	}
}
