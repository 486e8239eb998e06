package main

import (
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func pauseCommand() *cli.Command {
	return idCommand("pause", "freeze all processes of a container", (*container.Runtime).Pause)
}
