// Command bulwark-tools is the bulwark binary's companion: it runs the
// person-face flows whose dependencies are too heavy for the binary every
// container start maps and re-executes (pull and load: a registry client,
// TLS, HTTP, decompressors; audit: YAML). bulwark starts it, one request
// per process, through internal/toolsproto; people never run it.
// scripts/build.sh builds it next to bulwark as bulwark-tools.
package main

import (
	"os"

	"github.com/bulwark-sec/bulwark/pkg/rootless/mapped"
	"github.com/bulwark-sec/bulwark/pkg/userface/tools"
)

func main() {
	// A rootless pull's or load's unpack in its user namespace.
	mapped.Serve()
	os.Exit(tools.Main(os.Args[1:]))
}
