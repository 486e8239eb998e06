package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// printVersion answers --version in runc's shape: the name and version on
// the first line, then one "key: value" a line. Docker's `docker info` takes
// the runtime's commit from the "commit:" line, and scripts read "spec:" for
// the runtime-spec version the runtime writes and understands.
func printVersion(cmd *cli.Command) {
	root := cmd.Root()
	w := root.Writer
	fmt.Fprintf(w, "%s version %s\n", root.Name, root.Version)
	fmt.Fprintf(w, "commit: %s\n", buildCommit())
	fmt.Fprintf(w, "spec: %s\n", specs.Version)
	fmt.Fprintf(w, "go: %s\n", runtime.Version())
	fmt.Fprintf(w, "libseccomp: %s\n", seccomp.Version())
}

// gitCommit is set by scripts/build.sh (-ldflags "-X main.gitCommit=...").
var gitCommit string

// buildCommit is the commit scripts/build.sh stamped, else the VCS revision
// the Go toolchain stamped (a plain go build in a git checkout, unless
// -buildvcs=false), with "-dirty" for uncommitted changes.
func buildCommit() string {
	if gitCommit != "" {
		return gitCommit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "unknown"
	}
	if modified == "true" {
		rev += "-dirty"
	}
	return rev
}
