// Command mkrootfs builds the demo and test rootfs: Debian's static busybox
// plus the project's static Go payloads. No registry is needed.
package main

import (
	"fmt"
	"os"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkrootfs DIR")
		os.Exit(2)
	}
	if err := testrootfs.Build(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkrootfs:", err)
		os.Exit(1)
	}
}
