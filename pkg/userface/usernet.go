package userface

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
	"github.com/bulwark-sec/bulwark/pkg/usernet"
)

// User-mode networks (--net pasta|slirp) are pkg/usernet's; here the run
// checks the request and wires the relay into create and start.

func isUserNet(flag string) bool { return usernet.Is(flag) }

// readUserNet checks --net pasta|slirp and its -p without changing the
// host: the relay is installed, the ports parse and are free on the host.
func (r *request) readUserNet() error {
	bin, pkg := usernet.Tool(r.net)
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("--net %s: %s not found: install Debian's %s package", r.net, bin, pkg)
	}
	r.netMode = &network.Mode{Flag: r.net, Kind: "none"}
	for _, p := range r.Publish {
		port, err := network.ParsePort(p)
		if err != nil {
			return fmt.Errorf("--publish %s: %w", p, err)
		}
		r.ports = append(r.ports, port)
	}
	return network.CheckHostPorts(r.ports)
}

// userNetRun attaches a run's user-mode network between create and start:
// the init hands over its namespaces during create, and the payload is
// started only once the relay is ready.
type userNetRun struct {
	r              *request
	dir            string
	userns, netnsF *os.File
	relay          *usernet.Relay
}

// wire sets ro up for it; the container owns the keeper's record first,
// so that delete kills the relay before it removes anything else.
func (u *userNetRun) wire(ro *container.RunOpts) {
	ro.Owns = append([]container.Owned{{Kind: container.OwnedProcessGroup,
		Path: filepath.Join(u.dir, usernet.RecordFile)}}, ro.Owns...)
	ro.Namespaces = func(userns, netns *os.File) error {
		u.userns, u.netnsF = userns, netns
		return nil
	}
	ro.Created = func(pid int) error {
		defer u.closeNamespaces()
		if u.userns == nil {
			return fmt.Errorf("--net %s: the container's init did not hand over its namespaces", u.r.net)
		}
		var err error
		u.relay, err = usernet.Attach(u.r.net, u.r.ports, pid, u.userns, u.netnsF, u.dir)
		return err
	}
}

func (u *userNetRun) closeNamespaces() {
	for _, f := range []*os.File{u.userns, u.netnsF} {
		if f != nil {
			f.Close()
		}
	}
	u.userns, u.netnsF = nil, nil
}

// stop ends the relay (its ports close with it); nil-safe.
func (u *userNetRun) stop() {
	if u == nil {
		return
	}
	u.closeNamespaces()
	u.relay.Stop()
}
