package userface

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// NetworkStore is the store of named networks and CNI config lists the
// options name.
func (o *Options) NetworkStore() *network.Store {
	s := network.Default()
	if o.NetworkDir != "" {
		s.Dir = o.NetworkDir
	}
	if o.CNIDir != "" {
		s.CNIDir = o.CNIDir
	}
	return s
}

// readNetwork checks --net and -p without changing the host: the network
// exists, its plugins are installed, the ports parse and can be published
// there.
func (r *request) readNetwork() error {
	if isUserNet(r.net) {
		return r.readUserNet()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.NetworkStore().Resolve(ctx, r.net)
	if err != nil {
		return fmt.Errorf("--net %s: %w", r.net, err)
	}
	r.netMode = m
	for _, p := range r.Publish {
		port, err := network.ParsePort(p)
		if err != nil {
			return fmt.Errorf("--publish %s: %w", p, err)
		}
		if m.Kind != "cni" || !m.Ports {
			return fmt.Errorf("--publish %s: --net %s cannot publish ports; use --net bridge or a bridge network", p, r.net)
		}
		r.ports = append(r.ports, port)
	}
	return nil
}

// networkNamespace points the spec at the network namespace the container
// will join: its own, made by Attach, or another container's.
func (r *request) networkNamespace(rt *container.Runtime, s *specs.Spec, id string) error {
	switch r.netMode.Kind {
	case "cni":
		return policy.WithNetworkNamespace(network.NetnsPath(rt.Root, id))(s)
	case "container":
		st, err := rt.Load(r.netMode.Container)
		if err != nil {
			return fmt.Errorf("--net %s: %w", r.net, err)
		}
		if rt.Status(st) != specs.StateRunning && rt.Status(st) != specs.StateCreated {
			return fmt.Errorf("--net %s: container %s is %s, not running", r.net, st.ID, rt.Status(st))
		}
		return policy.WithNetworkNamespace("/proc/" + strconv.Itoa(st.Pid) + "/ns/net")(s)
	}
	return nil
}

// network attaches the container to its CNI network. The container owns
// the attachment's record from before its first change, so that its
// delete, this run's own undo and `bulwark gc` after a SIGKILL all detach
// exactly what was attached.
func (h *host) network(r *request, s *specs.Spec, p Paths, root, id string) error {
	if r.netMode.Kind != "cni" {
		return nil
	}
	h.own(container.Owned{Kind: container.OwnedNetwork, Path: network.RecordPath(root, id)})
	req := &network.Request{Root: root, ID: id, Mode: r.netMode, Ports: r.ports, Hostname: s.Hostname}
	// The files prepare wrote, unless the person mounts their own.
	req.HostsFile = existing(filepath.Join(p.Files, "hosts"))
	req.ResolvFile = existing(filepath.Join(p.Files, "resolv.conf"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := network.Attach(ctx, req); err != nil {
		return fmt.Errorf("--net %s: %w", r.net, err)
	}
	return nil
}

func existing(path string) string {
	if _, err := os.Stat(path); err != nil {
		return ""
	}
	return path
}
