// Command mkdebian builds (or finds in its cache) the Debian rootfs the
// real-software tests run, and prints its path. scripts/test.sh runs it
// before `go test` so that a cold cache's build of several minutes does
// not count against a test's timeout. Exit status 3: the rootfs cannot be
// built here (the tests will skip and say why).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func main() {
	dir, err := testrootfs.BuildDebian(os.Stderr)
	if errors.Is(err, testrootfs.ErrDebianUnavailable) {
		fmt.Fprintln(os.Stderr, "mkdebian:", err)
		os.Exit(3)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdebian:", err)
		os.Exit(1)
	}
	fmt.Println(dir)
}
