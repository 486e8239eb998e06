package vmagent

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rtnl"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/netns"
)

// setupNetwork brings the guest's loopback up and gives each NIC of the
// config (the container's interfaces, bridged by pkg/vmnet) the
// interface's name, MTU, addresses and routes, so that the payload finds
// the network the container was attached to, under the same names.
func setupNetwork(nics []vmproto.NIC) error {
	if err := netns.LoopbackUp(); err != nil {
		return err
	}
	if len(nics) == 0 {
		return nil
	}
	for _, n := range nics {
		if err := n.Check(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	// Debian's kernel has virtio_net as a module (the minimal kernel
	// builds it in and lists none).
	if err := loadModules(vmproto.NetModuleOrder); err != nil {
		return err
	}
	c, err := rtnl.Open()
	if err != nil {
		return err
	}
	defer c.Close()
	for _, n := range nics {
		if err := setupNIC(c, n, 10*time.Second); err != nil {
			return fmt.Errorf("network interface %s: %w", n.Name, err)
		}
	}
	return nil
}

func setupNIC(c *rtnl.Conn, n vmproto.NIC, wait time.Duration) error {
	mac, _ := net.ParseMAC(n.MAC) // checked
	l, err := waitLink(c, mac, wait)
	if err != nil {
		return err
	}
	if l.Name != n.Name {
		if _, err := c.LinkByName(n.Name); err != nil {
			// Renamed while down, then brought up below.
			if err := c.SetLink(l.Index, n.Name, 0, false); err != nil {
				return err
			}
		}
	}
	if err := c.SetLink(l.Index, "", n.MTU, true); err != nil {
		return err
	}
	for _, a := range n.Addrs {
		if err := c.AddAddr(l.Index, netip.MustParsePrefix(a)); err != nil {
			return err
		}
	}
	// On-link routes first: a gateway must be reachable when its route
	// goes in.
	routes := append([]vmproto.Route(nil), n.Routes...)
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].Gateway == "" && routes[j].Gateway != "" })
	for _, r := range routes {
		rr := rtnl.Route{Index: l.Index, Dst: netip.MustParsePrefix(r.Dst), Priority: r.Metric, Scope: unix.RT_SCOPE_LINK}
		if r.Gateway != "" {
			rr.Gateway = netip.MustParseAddr(r.Gateway)
			rr.Scope = unix.RT_SCOPE_UNIVERSE
		}
		if r.Src != "" {
			rr.Src = netip.MustParseAddr(r.Src)
		}
		if err := c.AddRoute(rr); err != nil {
			return err
		}
	}
	return nil
}

// waitLink waits for the NIC with the MAC: the driver registers it as it
// probes the device, after its module loads.
func waitLink(c *rtnl.Conn, mac net.HardwareAddr, wait time.Duration) (rtnl.Link, error) {
	deadline := time.Now().Add(wait)
	for {
		ls, err := c.Links()
		if err != nil {
			return rtnl.Link{}, err
		}
		for _, l := range ls {
			if l.MAC.String() == mac.String() {
				return l, nil
			}
		}
		if time.Now().After(deadline) {
			return rtnl.Link{}, fmt.Errorf("no network device with MAC %s after %v (is virtio_net in the guest kernel?)", mac, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
