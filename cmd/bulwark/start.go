package main

import (
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func startCommand() *cli.Command {
	return idCommand("start", "start a created container", (*container.Runtime).Start)
}
