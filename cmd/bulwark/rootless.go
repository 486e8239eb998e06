package main

import (
	"slices"

	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/rootless"
)

// stateCommands keep container state under --root; without root their
// default --root is the caller's runtime directory.
var stateCommands = []string{"create", "start", "run", "state", "kill", "delete", "list", "exec", "pause",
	"resume", "ps", "update", "events", "checkpoint", "restore", "learn", "gc", "ls", "logs", "stop", "rm"}

// setupRootless applies pkg/rootless's decision to the global flags: a
// rootless runtime keeps its state under $XDG_RUNTIME_DIR/bulwark unless
// --root says otherwise. A command that keeps no state does not need one.
func setupRootless(cmd *cli.Command) error {
	on, err := rootless.Enabled(cmd.String("rootless"))
	if err != nil || !on || cmd.IsSet("root") {
		return err
	}
	dir, err := rootless.StateDir()
	if err != nil {
		if slices.Contains(stateCommands, cmd.Args().First()) {
			return err
		}
		return nil
	}
	return cmd.Set("root", dir)
}

// isRootless is the decision setupRootless checked.
func isRootless(cmd *cli.Command) bool {
	on, _ := rootless.Enabled(cmd.String("rootless"))
	return on
}
