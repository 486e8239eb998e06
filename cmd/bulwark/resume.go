package main

import (
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

func resumeCommand() *cli.Command {
	return idCommand("resume", "thaw a paused container", (*container.Runtime).Resume)
}
