// Package vmnet carries a VM container's network into its guest, the
// "tcfilter" way Kata Containers does: for each Ethernet interface of the
// container's network namespace (the veth a bridge network or an engine
// put there), a tap in that same namespace, and on both an ingress qdisc
// with filters redirecting frames to the other. What arrives on the
// container's interface leaves through the tap to QEMU's virtio-net
// device, and what the guest sends as the container comes out of the
// container's interface, unchanged: the guest's NIC gets the interface's
// MAC, addresses and routes (Describe, then the agent), so nothing
// outside the container sees a difference, and no bridge, NAT or address
// is added.
//
// Bridge runs in the runtime, which holds CAP_NET_ADMIN over every
// namespace; the taps reach QEMU as inherited file descriptors
// (`-netdev tap,fd=N`), so QEMU, the container's init, runs without
// CAP_NET_ADMIN, cannot make a tap or change a filter, and can only read
// and write the frames of the taps it was given.
//
// Threat: the guest is hostile, so what it sends must leave only through
// the container's own interface, as the container's own traffic would:
// the redirect adds no path the container did not have (the bridge
// network's isolation rules apply on the host side as before). A
// namespace container cannot send raw frames; a guest owning its kernel
// can, and would forge its neighbours' MACs and addresses (ARP poisoning,
// IPv6 router advertisements). So the tap's filters (guard) redirect only
// frames with the interface's source MAC and, for IPv4, ARP and IPv6, one
// of its addresses as source (ARP's sender, an IPv6 neighbour
// advertisement's target too), and never an IPv6 router advertisement or
// redirect, a VLAN tag or another ethertype; the rest stays on the tap's
// own stack, which drops it (deadEnd). Still open: a guest may use any
// fe80::/64 source and advertise any fe80::/64 target, so it can answer
// for a neighbour's link-local address (not for its global ones), and a
// broadcast with a forged source reaches the namespace's own sockets when
// the namespace's reverse path filter is loose (conf/all/rp_filter 2).
//
// The taps are not persistent: they go with the last descriptor (QEMU's
// and its monitor's, so also when QEMU is killed), their filters with
// them, and the redirect on the container's interface with the namespace.
//
// The namespace's own stack keeps a narrow way out (steer): its local
// ports are a block of their own, and IPv4 answers to them, and a copy of
// every ARP frame, reach it, so that an engine's helper working in the
// namespace (Docker's embedded DNS server asking its upstream) still gets
// its answers; everything else is the guest's.
//
// When not to use it: a network namespace shared with other containers
// (a pod, `--net container:NAME`): the redirect takes every frame of its
// interfaces away from the namespace's own stack. An interface that has
// an ingress qdisc already (a live VM's redirect, someone's traffic
// control) is refused, not taken over; only the redirect a dead VM left
// (every filter pointing at a link that is gone) is replaced.
package vmnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rtnl"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/netns"
)

// tapPrefix names a tap after the container interface it carries:
// vmtap<ifindex of the interface>, which Describe reads back.
const tapPrefix = "vmtap"

// Bridgeable tells whether the link is one Bridge carries into the guest:
// an Ethernet link that is up and is not itself a tap. Loopback stays the
// namespace's; the kernel's fallback tunnel devices (gretap0, erspan0: down,
// reaching nothing) are not bridged.
func Bridgeable(l rtnl.Link) bool {
	return l.Type == unix.ARPHRD_ETHER && l.Flags&unix.IFF_UP != 0 && l.Flags&unix.IFF_LOOPBACK == 0 &&
		l.Kind != "tun" && !strings.HasPrefix(l.Name, tapPrefix)
}

// Bridge makes a tap for each bridgeable interface of the network
// namespace at nsPath and redirects each to its tap and back. It returns
// the taps (none for a namespace with only lo), in the order of the
// interfaces' indexes, for QEMU to inherit.
func Bridge(nsPath string) (taps []*os.File, err error) {
	err = netns.DoPath(nsPath, func() (err error) {
		taps, err = bridge() // its errors name "vm network" already
		return err
	})
	return taps, err
}

// bridge runs in the container's network namespace.
func bridge() (_ []*os.File, err error) {
	c, err := rtnl.Open()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	defer c.Close()
	links, err := c.Links()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Index < links[j].Index })
	addrs, err := c.Addrs()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	var taps []*os.File
	var wired []int // container interfaces with our ingress qdisc
	defer func() {
		if err == nil {
			return
		}
		for _, t := range taps {
			t.Close() // not persistent: the tap and its filters go
		}
		for _, i := range wired {
			_ = c.DelIngress(i)
		}
		taps = nil
	}()
	for _, l := range links {
		if !Bridgeable(l) {
			continue
		}
		if len(taps) == 0 {
			if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte(nsPorts), 0); err != nil {
				return nil, fmt.Errorf("vm network: the namespace's own ports: %w", err)
			}
		}
		name := tapPrefix + strconv.Itoa(l.Index)
		tap, err := openTap(name)
		if err != nil {
			return nil, fmt.Errorf("vm network: tap for %s: %w", l.Name, err)
		}
		taps = append(taps, tap)
		t, err := c.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("vm network: tap for %s: %w", l.Name, err)
		}
		if err := deadEnd(name); err != nil {
			return nil, fmt.Errorf("vm network: tap for %s: %w", l.Name, err)
		}
		if err := c.SetLink(t.Index, "", l.MTU, true); err != nil {
			return nil, fmt.Errorf("vm network: tap for %s: %w", l.Name, err)
		}
		if err := addIngress(c, l, links); err != nil {
			return nil, fmt.Errorf("vm network: interface %s: %w", l.Name, err)
		}
		wired = append(wired, l.Index)
		if err := c.AddIngress(t.Index); err != nil {
			return nil, fmt.Errorf("vm network: tap for %s: %w", l.Name, err)
		}
		if err := steer(c, l.Index, t.Index); err != nil {
			return nil, fmt.Errorf("vm network: interface %s: %w", l.Name, err)
		}
		if err := c.Redirect(l.Index, t.Index); err != nil {
			return nil, fmt.Errorf("vm network: interface %s: %w", l.Name, err)
		}
		if err := guard(c, t.Index, l, addrs); err != nil {
			return nil, fmt.Errorf("vm network: the guest's frames to %s: %w", l.Name, err)
		}
	}
	return taps, nil
}

// The namespace's own sockets: after the redirect the namespace's stack
// still sends through the container's interface (an engine's helper that
// works in the container's namespace: Docker's embedded DNS server asks
// the upstream nameservers from there), but the answers arrive on the
// interface, where they would all go to the guest. So the namespace's
// stack picks its local ports from 61184-61439 (nsPorts), a block the
// guest kernel's default ephemeral range (32768-60999) leaves alone, and
// IPv4 UDP and TCP packets to those ports, and a copy of every ARP frame
// (its neighbours' answers), go on to the namespace's stack (steer). A
// server in the guest listening on a port of that block is not reached
// from outside.
const (
	nsPorts    = "61184 61439"
	nsPortBase = 0xef00
	nsPortMask = 0xff00
)

// steer adds the filters that keep the namespace's own traffic (above)
// in the namespace, ahead of the redirect of the interface from to the
// tap to.
func steer(c *rtnl.Conn, from, to int) error {
	if err := c.MirrorARP(from, to); err != nil {
		return err
	}
	for _, p := range []uint8{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		if err := c.PassIPv4Ports(from, p, nsPortBase, nsPortMask); err != nil {
			return err
		}
	}
	return nil
}

// addIngress adds the ingress qdisc to the container interface l. One left
// by an earlier VM of the same namespace (a pod's container restarted in
// its sandbox: the namespace outlives the VM) is taken over: every filter
// on it is a mirred redirect to a link that no longer exists (that VM's
// tap, gone with its last descriptor; the kernel then reports ifindex 0). The tap of l was just made, so no live VM
// holds l (its tap would have been busy). Any other ingress qdisc is
// someone's traffic control and stays refused. links are the namespace's
// links, listed before this bridge made its taps.
func addIngress(c *rtnl.Conn, l rtnl.Link, links []rtnl.Link) error {
	err := c.AddIngress(l.Index)
	if !errors.Is(err, rtnl.ErrBusy) {
		return err
	}
	targets, terr := c.RedirectTargets(l.Index)
	if terr != nil || len(targets) == 0 {
		return err
	}
	for _, t := range targets {
		if t < 0 {
			return err
		}
		for _, o := range links {
			if o.Index == t {
				return err
			}
		}
	}
	if derr := c.DelIngress(l.Index); derr != nil {
		return fmt.Errorf("%w; removing a dead VM's redirect: %v", err, derr)
	}
	return c.AddIngress(l.Index)
}

// openTap creates the tap name in the calling thread's network namespace
// (a tun file belongs to the namespace it was opened in) and returns its
// file. No IFF_VNET_HDR: QEMU then offers the guest no offloads and every
// frame is a plain Ethernet frame, which the redirect passes as is.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("/dev/net/tun: %w (is the tun module loaded?)", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap "+name), nil
}

// TapName is the name of the tap whose file f is, or "" if f is no tap.
func TapName(f *os.File) string {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return ""
	}
	if err := unix.IoctlIfreq(int(f.Fd()), unix.TUNGETIFF, ifr); err != nil {
		return ""
	}
	if ifr.Uint16()&unix.IFF_TAP == 0 {
		return ""
	}
	return ifr.Name()
}

// InheritedTaps finds the taps among the process's open descriptors: QEMU's
// monitor inherits them from the container's init. Others stay open as
// they are.
func InheritedTaps() ([]*os.File, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	var taps []*os.File
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != "/dev/net/tun" {
			continue
		}
		f := os.NewFile(uintptr(fd), "tap")
		if TapName(f) == "" {
			continue
		}
		// Passed on by name (QEMU's ExtraFiles), never by accident.
		unix.CloseOnExec(fd)
		taps = append(taps, f)
	}
	sort.Slice(taps, func(i, j int) bool { return TapName(taps[i]) < TapName(taps[j]) })
	return taps, nil
}

// Interfaces lists the names of the interfaces Bridge would carry in the
// network namespace at nsPath, changing nothing.
func Interfaces(nsPath string) (names []string, err error) {
	err = netns.DoPath(nsPath, func() error {
		c, err := rtnl.Open()
		if err != nil {
			return err
		}
		defer c.Close()
		links, err := c.Links()
		for _, l := range links {
			if Bridgeable(l) {
				names = append(names, l.Name)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	return names, nil
}

// ErrNotBridged: a tap names no container interface of this namespace.
var ErrNotBridged = errors.New("carries no interface of this network namespace")

// Describe returns the NIC the guest gets for each tap: the name, MAC and
// MTU of the container interface the tap is bridged to, its addresses
// (but the link-local ones the guest makes itself) and its routes in the
// main table (but the ones the kernel derives from the addresses). It
// reads the calling thread's network namespace and needs no capability.
func Describe(taps []*os.File) ([]vmproto.NIC, error) {
	if len(taps) == 0 {
		// --net none, the host's network, lo only: nothing to read.
		return nil, nil
	}
	c, err := rtnl.Open()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	defer c.Close()
	links, err := c.Links()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	addrs, err := c.Addrs()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	routes, err := c.Routes()
	if err != nil {
		return nil, fmt.Errorf("vm network: %w", err)
	}
	byIndex := map[int]rtnl.Link{}
	for _, l := range links {
		byIndex[l.Index] = l
	}
	var out []vmproto.NIC
	for _, t := range taps {
		name := TapName(t)
		idx, err := strconv.Atoi(strings.TrimPrefix(name, tapPrefix))
		l, ok := byIndex[idx]
		if err != nil || !ok || !strings.HasPrefix(name, tapPrefix) {
			return nil, fmt.Errorf("vm network: tap %q %w", name, ErrNotBridged)
		}
		n := vmproto.NIC{Name: l.Name, MAC: l.MAC.String(), MTU: l.MTU}
		for _, a := range addrs {
			if a.Index == idx && a.Scope != unix.RT_SCOPE_LINK && a.Scope != unix.RT_SCOPE_HOST {
				n.Addrs = append(n.Addrs, a.Prefix.String())
			}
		}
		for _, r := range routes {
			if guestRoute(r, idx) {
				vr := vmproto.Route{Dst: r.Dst.String(), Metric: r.Priority}
				if r.Gateway.IsValid() {
					vr.Gateway = r.Gateway.String()
				}
				if r.Src.IsValid() {
					vr.Src = r.Src.String()
				}
				n.Routes = append(n.Routes, vr)
			}
		}
		if err := n.Check(); err != nil {
			return nil, fmt.Errorf("vm network: interface %s: %w", l.Name, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// guestRoute: a unicast route of the main table through the interface
// that the guest would not make by itself (a prefix route of an address,
// IPv6's fe80::/64 and multicast routes are the kernel's).
func guestRoute(r rtnl.Route, index int) bool {
	if r.Index != index || r.Table != unix.RT_TABLE_MAIN || r.Type != unix.RTN_UNICAST || r.Protocol == unix.RTPROT_KERNEL {
		return false
	}
	return !r.Dst.Overlaps(netip.MustParsePrefix("fe80::/10")) || r.Dst.Bits() == 0
}
