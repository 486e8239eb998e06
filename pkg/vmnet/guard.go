package vmnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rtnl"
)

// Priorities of the guard's filters on a tap's ingress qdisc (the kernel
// keeps one protocol per priority): ARP, IPv4, then IPv6's neighbour
// advertisements of the guest's own addresses, the ICMPv6 types kept
// away from the neighbours, and the rest of IPv6.
const (
	guardARP = 1 + iota
	guardIPv4
	guardNA
	guardKeep6
	guardIPv6
)

// ICMPv6 types (RFC 4861) the guard looks at.
const (
	icmp6RouterAdvert   = 134
	icmp6NeighborAdvert = 136
	icmp6Redirect       = 137
)

// guard redirects to the container interface l only the frames the
// guest may send as the container: source MAC l's, and
//   - IPv4 from one of l's IPv4 addresses;
//   - ARP (Ethernet, IPv4) whose sender is l's MAC and one of its IPv4
//     addresses;
//   - IPv6, only when l has an IPv6 address of its own (link-local
//     included: the container's stack could then speak IPv6 on l; without
//     one it could not, and the guest may not either), from one of its
//     addresses, a link-local address (fe80::/64: the guest makes its own)
//     or :: (duplicate address detection), carrying TCP, UDP or ICMPv6
//     directly (no extension header); of ICMPv6, never a router
//     advertisement or a redirect, and a neighbour advertisement only for
//     a target the guest may send from.
//
// Every other frame (another MAC or address, a VLAN tag, another
// ethertype) is not redirected and ends on the tap's own stack, a dead
// end (deadEnd).
func guard(c *rtnl.Conn, tap int, l rtnl.Link, addrs []rtnl.Addr) error {
	if len(l.MAC) != 6 {
		return fmt.Errorf("its MAC %v is no Ethernet address", l.MAC)
	}
	mac := []rtnl.Key{
		{Mask: 0xffffffff, Val: binary.BigEndian.Uint32(l.MAC[0:4]), Off: -8},
		{Mask: 0xffff0000, Val: uint32(binary.BigEndian.Uint16(l.MAC[4:6])) << 16, Off: -4},
	}
	keys := func(ks ...[]rtnl.Key) []rtnl.Key {
		var out []rtnl.Key
		for _, k := range ks {
			out = append(out, k...)
		}
		return out
	}
	var v4, v6 []netip.Prefix // as the guest may send from
	has6 := false
	for _, a := range addrs {
		if a.Index != l.Index {
			continue
		}
		ip := a.Prefix.Addr()
		switch {
		case ip.Is4():
			v4 = append(v4, netip.PrefixFrom(ip, 32))
		case ip.IsLinkLocalUnicast():
			has6 = true
		default:
			has6 = true
			v6 = append(v6, netip.PrefixFrom(ip, 128))
		}
	}
	for _, p := range v4 {
		a := p.Addr().As4()
		src := binary.BigEndian.Uint32(a[:])
		ip := []rtnl.Key{
			{Mask: 0xf0000000, Val: 0x40000000, Off: 0}, // version 4
			{Mask: 0xffffffff, Val: src, Off: 12},
		}
		if err := c.RedirectMatching(tap, l.Index, guardIPv4, unix.ETH_P_IP, keys(mac, ip)); err != nil {
			return err
		}
		sha := binary.BigEndian.Uint32(l.MAC[0:4])
		arp := []rtnl.Key{
			{Mask: 0xffffffff, Val: 0x00010800, Off: 0}, // Ethernet, IPv4
			{Mask: 0xffff0000, Val: 0x06040000, Off: 4}, // their lengths
			{Mask: 0xffffffff, Val: sha, Off: 8},
			{Mask: 0xffffffff, Val: uint32(l.MAC[4])<<24 | uint32(l.MAC[5])<<16 | src>>16, Off: 12},
			{Mask: 0xffff0000, Val: src << 16, Off: 16},
		}
		if err := c.RedirectMatching(tap, l.Index, guardARP, unix.ETH_P_ARP, keys(mac, arp)); err != nil {
			return err
		}
	}
	if !has6 {
		return nil
	}
	linkLocal := netip.MustParsePrefix("fe80::/64")
	srcs := append(append([]netip.Prefix{}, v6...), linkLocal, netip.MustParsePrefix("::/128"))
	nh := func(p uint8) rtnl.Key { return rtnl.Key{Mask: 0x0000ff00, Val: uint32(p) << 8, Off: 4} }
	icmp := func(typ uint32) rtnl.Key { return rtnl.Key{Mask: 0xff000000, Val: typ << 24, Off: 40} }
	for _, s := range srcs[:len(srcs)-1] { // an advertisement never comes from ::
		for _, tg := range append(append([]netip.Prefix{}, v6...), linkLocal) {
			k := keys(mac, prefixKeys(s, 8), prefixKeys(tg, 48), []rtnl.Key{nh(unix.IPPROTO_ICMPV6), icmp(icmp6NeighborAdvert)})
			if err := c.RedirectMatching(tap, l.Index, guardNA, unix.ETH_P_IPV6, k); err != nil {
				return err
			}
		}
	}
	for _, typ := range []uint32{icmp6RouterAdvert, icmp6NeighborAdvert, icmp6Redirect} {
		k := []rtnl.Key{nh(unix.IPPROTO_ICMPV6), icmp(typ)}
		if err := c.KeepMatching(tap, guardKeep6, unix.ETH_P_IPV6, k); err != nil {
			return err
		}
	}
	for _, s := range srcs {
		for _, p := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_ICMPV6} {
			k := keys(mac, []rtnl.Key{{Mask: 0xf0000000, Val: 0x60000000, Off: 0}, nh(p)}, prefixKeys(s, 8))
			if err := c.RedirectMatching(tap, l.Index, guardIPv6, unix.ETH_P_IPV6, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// prefixKeys matches the IPv6 prefix p at off from the network header
// (8: the source address, 48: a neighbour advertisement's target).
func prefixKeys(p netip.Prefix, off int32) []rtnl.Key {
	a := p.Addr().As16()
	var ks []rtnl.Key
	for i := 0; i < 4; i++ {
		bits := p.Bits() - 32*i
		if bits <= 0 {
			break
		}
		mask := uint32(0xffffffff)
		if bits < 32 {
			mask <<= 32 - bits
		}
		ks = append(ks, rtnl.Key{Mask: mask, Val: binary.BigEndian.Uint32(a[4*i:]) & mask, Off: off + int32(4*i)})
	}
	return ks
}

// deadEnd makes the tap's own stack drop what the guard leaves it: no
// IPv6 at all, no IPv4 forwarding from the tap, strict reverse path
// filtering (the tap routes nothing, so no source passes: no local
// delivery of a forged packet to the namespace's sockets), and no ARP
// answer for the namespace's addresses. Written before the tap is up.
func deadEnd(tap string) error {
	for _, s := range []struct{ path, val string }{
		{"/proc/sys/net/ipv6/conf/" + tap + "/disable_ipv6", "1"},
		{"/proc/sys/net/ipv4/conf/" + tap + "/forwarding", "0"},
		{"/proc/sys/net/ipv4/conf/" + tap + "/rp_filter", "1"},
		{"/proc/sys/net/ipv4/conf/" + tap + "/arp_ignore", "8"},
	} {
		err := os.WriteFile(s.path, []byte(s.val), 0)
		if errors.Is(err, fs.ErrNotExist) && strings.Contains(s.path, "/ipv6/") {
			continue // a kernel without IPv6 has no IPv6 stack to reach
		}
		if err != nil {
			return fmt.Errorf("the tap's own stack: %w", err)
		}
	}
	return nil
}
