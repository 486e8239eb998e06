// Package rtnl speaks the little rtnetlink a VM container's network needs,
// on both sides of the VM: on the host, list a network namespace's links,
// addresses and routes, and wire a tap to a container interface with an
// ingress qdisc and u32 filters whose mirred action redirects every frame,
// or the frames matching their keys, to the other device (the "tcfilter"
// bridge Kata uses); in the guest, give the NIC its name, MTU, addresses
// and routes.
//
// Threat: none of its own; it is a wire format. A Conn acts in the network
// namespace of the thread that opened it, so callers that enter a
// container's namespace open it there, on a locked thread. Replies are
// parsed with bounds checks: a malformed message is an error, not a panic.
package rtnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

var ne = binary.NativeEndian

// Conn is a NETLINK_ROUTE socket in the namespace it was opened in.
type Conn struct {
	fd  int
	seq uint32
}

// Open opens a NETLINK_ROUTE socket in the calling thread's network
// namespace.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rtnetlink bind: %w", err)
	}
	// Bounded replies: a request waits at most this long for its answer.
	tv := unix.NsecToTimeval(5e9)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &Conn{fd: fd}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return unix.Close(c.fd) }

func (c *Conn) send(typ, flags uint16, body []byte) (uint32, error) {
	c.seq++
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	ne.PutUint32(b[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags|unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], c.seq)
	b = append(b, body...)
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	return c.seq, nil
}

// receive reads messages of request seq until an ack, an error or (for a
// dump) NLMSG_DONE, and returns the data messages.
func (c *Conn) receive(seq uint32) ([]syscall.NetlinkMessage, error) {
	var out []syscall.NetlinkMessage
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return nil, fmt.Errorf("rtnetlink: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("rtnetlink: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("rtnetlink: short error message")
				}
				if e := int32(ne.Uint32(m.Data)); e != 0 {
					return nil, unix.Errno(-e)
				}
				return out, nil
			default:
				// Copied: buf is reused by the next read.
				out = append(out, syscall.NetlinkMessage{Header: m.Header, Data: append([]byte(nil), m.Data...)})
			}
		}
	}
}

func (c *Conn) do(typ, flags uint16, body []byte) error {
	seq, err := c.send(typ, flags|unix.NLM_F_ACK, body)
	if err != nil {
		return err
	}
	_, err = c.receive(seq)
	return err
}

func (c *Conn) dump(typ uint16, body []byte) ([]syscall.NetlinkMessage, error) {
	seq, err := c.send(typ, unix.NLM_F_DUMP, body)
	if err != nil {
		return nil, err
	}
	return c.receive(seq)
}

// attr encodes one attribute, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b := make([]byte, (l+3)&^3)
	ne.PutUint16(b[0:], uint16(l))
	ne.PutUint16(b[2:], typ)
	copy(b[unix.SizeofRtAttr:], data)
	return b
}

func nested(typ uint16, children ...[]byte) []byte {
	var data []byte
	for _, c := range children {
		data = append(data, c...)
	}
	return attr(typ|unix.NLA_F_NESTED, data)
}

func u32(v uint32) []byte { b := make([]byte, 4); ne.PutUint32(b, v); return b }

func cstring(s string) []byte { return append([]byte(s), 0) }

// attrs parses the attributes in b, nil-safe on truncation.
func attrs(b []byte) (map[uint16][]byte, error) {
	m := map[uint16][]byte{}
	for len(b) >= unix.SizeofRtAttr {
		l := int(ne.Uint16(b[0:]))
		typ := ne.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofRtAttr || l > len(b) {
			return nil, errors.New("rtnetlink: malformed attribute")
		}
		m[typ] = b[unix.SizeofRtAttr:l]
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return m, nil
}

// Link is one network interface.
type Link struct {
	Index int
	Name  string
	MAC   net.HardwareAddr
	MTU   int
	Flags uint32 // IFF_*
	Type  uint16 // ARPHRD_*
	Kind  string // IFLA_INFO_KIND: "veth", "tun", ""...
}

// Links lists the namespace's links.
func (c *Conn) Links() ([]Link, error) {
	msgs, err := c.dump(unix.RTM_GETLINK, make([]byte, unix.SizeofIfInfomsg))
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	var out []Link
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		l := Link{Type: ne.Uint16(m.Data[2:]), Index: int(int32(ne.Uint32(m.Data[4:]))), Flags: ne.Uint32(m.Data[8:])}
		as, err := attrs(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			return nil, err
		}
		l.Name = cstr(as[unix.IFLA_IFNAME])
		if a := as[unix.IFLA_ADDRESS]; len(a) > 0 {
			l.MAC = net.HardwareAddr(append([]byte(nil), a...))
		}
		if a := as[unix.IFLA_MTU]; len(a) == 4 {
			l.MTU = int(ne.Uint32(a))
		}
		if li, ok := as[unix.IFLA_LINKINFO]; ok {
			if inf, err := attrs(li); err == nil {
				l.Kind = cstr(inf[unix.IFLA_INFO_KIND])
			}
		}
		out = append(out, l)
	}
	return out, nil
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// SetLink renames the link (when name is set and differs; the link must be
// down), sets its MTU (when mtu > 0) and brings it up or down.
func (c *Conn) SetLink(index int, name string, mtu int, up bool) error {
	body := make([]byte, unix.SizeofIfInfomsg)
	ne.PutUint32(body[4:], uint32(index))
	if up {
		ne.PutUint32(body[8:], unix.IFF_UP)
	}
	ne.PutUint32(body[12:], unix.IFF_UP)
	if name != "" {
		body = append(body, attr(unix.IFLA_IFNAME, cstring(name))...)
	}
	if mtu > 0 {
		body = append(body, attr(unix.IFLA_MTU, u32(uint32(mtu)))...)
	}
	if err := c.do(unix.RTM_NEWLINK, 0, body); err != nil {
		return fmt.Errorf("setting link %d (name %q, mtu %d, up %v): %w", index, name, mtu, up, err)
	}
	return nil
}

// Addr is an address on a link.
type Addr struct {
	Index  int
	Prefix netip.Prefix
	Scope  uint8 // RT_SCOPE_*
}

// Addrs lists the namespace's addresses.
func (c *Conn) Addrs() ([]Addr, error) {
	msgs, err := c.dump(unix.RTM_GETADDR, make([]byte, unix.SizeofIfAddrmsg))
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var out []Addr
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		as, err := attrs(m.Data[unix.SizeofIfAddrmsg:])
		if err != nil {
			return nil, err
		}
		a := as[unix.IFA_LOCAL]
		if a == nil {
			a = as[unix.IFA_ADDRESS]
		}
		ip, ok := netip.AddrFromSlice(a)
		if !ok {
			continue
		}
		p, err := ip.Prefix(int(m.Data[1]))
		if err != nil {
			continue
		}
		out = append(out, Addr{Index: int(ne.Uint32(m.Data[4:])), Prefix: netip.PrefixFrom(ip, p.Bits()), Scope: m.Data[3]})
	}
	return out, nil
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// AddAddr adds the address p (its host part kept) to the link.
func (c *Conn) AddAddr(index int, p netip.Prefix) error {
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = family(p.Addr())
	body[1] = uint8(p.Bits())
	if p.Addr().Is6() {
		// The container's address was already checked for duplicates
		// where it was assigned; DAD would only delay the guest.
		body[2] = unix.IFA_F_NODAD
	}
	ne.PutUint32(body[4:], uint32(index))
	ip := p.Addr().AsSlice()
	body = append(body, attr(unix.IFA_LOCAL, ip)...)
	body = append(body, attr(unix.IFA_ADDRESS, ip)...)
	if err := c.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("adding address %s to link %d: %w", p, index, err)
	}
	return nil
}

// Route is a route of the main table.
type Route struct {
	Index    int          // the output link
	Dst      netip.Prefix // 0.0.0.0/0 or ::/0 for a default route
	Gateway  netip.Addr   // invalid: on-link
	Src      netip.Addr   // the preferred source; invalid: none
	Priority uint32
	Scope    uint8
	Protocol uint8
	Type     uint8
	Table    uint32
}

// Routes lists the namespace's routes, of every table.
func (c *Conn) Routes() ([]Route, error) {
	var out []Route
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		body := make([]byte, unix.SizeofRtMsg)
		body[0] = fam
		msgs, err := c.dump(unix.RTM_GETROUTE, body)
		if err != nil {
			if fam == unix.AF_INET6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue
			}
			return nil, fmt.Errorf("listing routes: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
				continue
			}
			d := m.Data
			r := Route{Table: uint32(d[4]), Protocol: d[5], Scope: d[6], Type: d[7]}
			as, err := attrs(d[unix.SizeofRtMsg:])
			if err != nil {
				return nil, err
			}
			if t := as[unix.RTA_TABLE]; len(t) == 4 {
				r.Table = ne.Uint32(t)
			}
			if o := as[unix.RTA_OIF]; len(o) == 4 {
				r.Index = int(ne.Uint32(o))
			}
			if p := as[unix.RTA_PRIORITY]; len(p) == 4 {
				r.Priority = ne.Uint32(p)
			}
			zero := netip.IPv4Unspecified()
			if d[0] == unix.AF_INET6 {
				zero = netip.IPv6Unspecified()
			}
			dst := zero
			if a, ok := netip.AddrFromSlice(as[unix.RTA_DST]); ok {
				dst = a
			}
			if r.Dst, err = dst.Prefix(int(d[1])); err != nil {
				continue
			}
			if a, ok := netip.AddrFromSlice(as[unix.RTA_GATEWAY]); ok {
				r.Gateway = a
			}
			if a, ok := netip.AddrFromSlice(as[unix.RTA_PREFSRC]); ok {
				r.Src = a
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// AddRoute adds r to the main table.
func (c *Conn) AddRoute(r Route) error {
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = family(r.Dst.Addr())
	body[1] = uint8(r.Dst.Bits())
	body[4] = unix.RT_TABLE_MAIN
	body[5] = unix.RTPROT_BOOT
	body[6] = r.Scope
	body[7] = unix.RTN_UNICAST
	if r.Dst.Bits() > 0 {
		body = append(body, attr(unix.RTA_DST, r.Dst.Addr().AsSlice())...)
	}
	if r.Gateway.IsValid() {
		body = append(body, attr(unix.RTA_GATEWAY, r.Gateway.AsSlice())...)
	}
	if r.Src.IsValid() {
		body = append(body, attr(unix.RTA_PREFSRC, r.Src.AsSlice())...)
	}
	if r.Priority > 0 {
		body = append(body, attr(unix.RTA_PRIORITY, u32(r.Priority))...)
	}
	body = append(body, attr(unix.RTA_OIF, u32(uint32(r.Index)))...)
	if err := c.do(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("adding route %s via %v on link %d: %w", r.Dst, r.Gateway, r.Index, err)
	}
	return nil
}

// Traffic control: the constants of linux/pkt_sched.h, pkt_cls.h,
// tc_act/tc_mirred.h that x/sys/unix does not carry.
const (
	tcHIngress      = 0xFFFFFFF1
	ingressHandle   = 0xFFFF0000
	tcaU32Sel       = 5
	tcaU32Act       = 7
	tcU32Terminal   = 1
	tcaActKind      = 1
	tcaActOptions   = 2
	tcaMirredParms  = 2
	tcActStolen     = 4
	tcActPipe       = 3
	tcaEgressRedir  = 1
	tcaEgressMirror = 2
	tcaGactParms    = 2
	sizeofTcmsg     = 20
)

func tcmsg(index int, handle, parent, info uint32) []byte {
	b := make([]byte, sizeofTcmsg)
	b[0] = unix.AF_UNSPEC
	ne.PutUint32(b[4:], uint32(index))
	ne.PutUint32(b[8:], handle)
	ne.PutUint32(b[12:], parent)
	ne.PutUint32(b[16:], info)
	return b
}

// ErrBusy: the link has an ingress qdisc already, someone else's traffic
// control (or another VM's redirect) that this one would fight.
var ErrBusy = errors.New("has an ingress qdisc already")

// AddIngress adds the ingress qdisc to the link.
func (c *Conn) AddIngress(index int) error {
	body := append(tcmsg(index, ingressHandle, tcHIngress, 0), attr(unix.TCA_KIND, cstring("ingress"))...)
	err := c.do(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("link %d %w", index, ErrBusy)
	}
	if err != nil {
		return fmt.Errorf("adding the ingress qdisc to link %d: %w", index, err)
	}
	return nil
}

// Filter priorities on an ingress qdisc: the steering filters run before
// the catch-all redirect (the kernel keeps one protocol per priority).
const (
	arpPrio      = 1
	passPrio     = 2
	redirectPrio = 3
)

// Key is one key of a u32 selector: the 32-bit word at Off bytes from the
// network header (negative: into the Ethernet header, whose source MAC is
// at -8), masked with Mask, must equal Val (both in host order).
type Key struct {
	Mask, Val uint32
	Off       int32
}

// u32Filter adds to from's ingress qdisc a u32 filter for frames of
// ethProto (host order) matching every key, with the action act.
func (c *Conn) u32Filter(from int, prio uint32, ethProto uint16, keys []Key, act []byte, what string) error {
	if len(keys) == 0 {
		keys = []Key{{}} // one key that masks nothing: every frame
	}
	// struct tc_u32_sel, terminal so the action runs, then its keys
	// (mask and value in network order).
	sel := make([]byte, 16+16*len(keys))
	sel[0] = tcU32Terminal
	sel[2] = byte(len(keys))
	for i, k := range keys {
		b := sel[16+16*i:]
		binary.BigEndian.PutUint32(b, k.Mask)
		binary.BigEndian.PutUint32(b[4:], k.Val)
		ne.PutUint32(b[8:], uint32(k.Off))
	}
	proto := uint32(ethProto>>8 | (ethProto&0xff)<<8) // network byte order
	body := tcmsg(from, 0, ingressHandle, prio<<16|proto)
	body = append(body, attr(unix.TCA_KIND, cstring("u32"))...)
	opts := attr(tcaU32Sel, sel)
	if act != nil {
		opts = append(opts, nested(tcaU32Act, act)...)
	}
	body = append(body, nested(unix.TCA_OPTIONS, opts)...)
	if err := c.do(unix.RTM_NEWTFILTER, unix.NLM_F_CREATE|unix.NLM_F_EXCL, body); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// mirred is a mirred action's list: eaction (redirect or mirror) to the
// link to, then the control action.
func mirred(eaction, control uint32, to int) []byte {
	// struct tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt),
	// eaction, ifindex.
	parms := make([]byte, 28)
	ne.PutUint32(parms[8:], control)
	ne.PutUint32(parms[20:], eaction)
	ne.PutUint32(parms[24:], uint32(to))
	return nested(1, attr(tcaActKind, cstring("mirred")), nested(tcaActOptions, attr(tcaMirredParms, parms)))
}

// Redirect adds to from's ingress qdisc (AddIngress) a filter matching
// every frame, of every protocol, whose action sends it out of to,
// unchanged: from then on nothing that arrives on from reaches the
// namespace's own stack, but what a steering filter (MirrorARP,
// PassIPv4Ports) lets through first.
func (c *Conn) Redirect(from, to int) error {
	return c.u32Filter(from, redirectPrio, unix.ETH_P_ALL, nil, mirred(tcaEgressRedir, tcActStolen, to),
		fmt.Sprintf("redirecting link %d to link %d", from, to))
}

// RedirectMatching adds to from's ingress qdisc (AddIngress) a filter at
// priority prio whose action sends the frames of ethProto matching every
// key out of to, unchanged. Frames it does not match go on to the next
// filter, and past the last one to from's own stack. Several filters of
// one protocol may share a priority; the kernel refuses a second protocol
// at a priority taken. Priorities 1 to 3 are the ones Redirect,
// MirrorARP and PassIPv4Ports use.
func (c *Conn) RedirectMatching(from, to int, prio uint16, ethProto uint16, keys []Key) error {
	if len(keys) == 0 {
		return errors.New("a filtered redirect needs a key (Redirect matches every frame)")
	}
	return c.u32Filter(from, uint32(prio), ethProto, keys, mirred(tcaEgressRedir, tcActStolen, to),
		fmt.Sprintf("redirecting link %d's protocol %#04x frames to link %d", from, ethProto, to))
}

// KeepMatching adds to from's ingress qdisc a filter at priority prio,
// without action, for the frames of ethProto matching every key: they end
// their classification there and go to from's own stack, never reaching a
// later-priority filter.
func (c *Conn) KeepMatching(from int, prio uint16, ethProto uint16, keys []Key) error {
	if len(keys) == 0 {
		return errors.New("keeping frames needs a key")
	}
	return c.u32Filter(from, uint32(prio), ethProto, keys, nil,
		fmt.Sprintf("keeping link %d's protocol %#04x frames on its stack", from, ethProto))
}

// MirrorARP adds to from's ingress qdisc a filter that sends a copy of
// every ARP frame out of to and lets the frame go on to from's own stack:
// both the link's namespace and what is behind to learn their neighbours.
func (c *Conn) MirrorARP(from, to int) error {
	return c.u32Filter(from, arpPrio, unix.ETH_P_ARP, nil, mirred(tcaEgressMirror, tcActPipe, to),
		fmt.Sprintf("mirroring link %d's ARP to link %d", from, to))
}

// PassIPv4Ports adds to from's ingress qdisc a filter that lets IPv4
// packets of protocol proto (unix.IPPROTO_UDP, IPPROTO_TCP) whose
// destination port, masked with mask, is port reach from's own stack.
// Only packets without IP options and that are not a later fragment
// match (the port is then at a fixed place); the rest goes on to the
// next filter.
func (c *Conn) PassIPv4Ports(from int, proto uint8, port, mask uint16) error {
	keys := []Key{
		{Mask: 0x0f000000, Val: 0x05000000, Off: 0},             // IHL 5: no options
		{Mask: 0x00001fff, Val: 0, Off: 4},                      // fragment offset 0
		{Mask: 0x00ff0000, Val: uint32(proto) << 16, Off: 8},    // protocol
		{Mask: uint32(mask), Val: uint32(port & mask), Off: 20}, // destination port
	}
	// No action: a terminal match without one ends the classification
	// with TC_ACT_OK, and the packet goes on to the stack (no gact
	// needed, which kernels without CONFIG_NET_ACT_GACT lack).
	return c.u32Filter(from, passPrio, unix.ETH_P_IP, keys, nil,
		fmt.Sprintf("passing link %d's protocol %d ports %#x/%#x to its stack", from, proto, port, mask))
}

// Redirects counts the u32 filters with mirred actions on the link's
// ingress qdisc (Redirect adds one, MirrorARP one), for tests and
// diagnostics.
func (c *Conn) Redirects(index int) (int, error) {
	targets, err := c.RedirectTargets(index)
	return len(targets), err
}

// RedirectTargets lists, for each u32 filter with actions on the link's
// ingress qdisc, the link its first mirred action sends frames to: 0 once
// that link is gone (the kernel drops a mirred action's device when it is
// unregistered), -1 when the filter's action is not a mirred one.
func (c *Conn) RedirectTargets(index int) ([]int, error) {
	msgs, err := c.dump(unix.RTM_GETTFILTER, tcmsg(index, 0, ingressHandle, 0))
	if err != nil {
		return nil, fmt.Errorf("listing the filters of link %d: %w", index, err)
	}
	var targets []int
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWTFILTER || len(m.Data) < sizeofTcmsg {
			continue
		}
		as, err := attrs(m.Data[sizeofTcmsg:])
		if err != nil {
			return nil, err
		}
		// u32 reports its hash table as well as the filter: count the
		// entries that carry actions.
		if cstr(as[unix.TCA_KIND]) != "u32" {
			continue
		}
		opts, err := attrs(as[unix.TCA_OPTIONS])
		if err != nil || opts[tcaU32Act] == nil {
			continue // PassIPv4Ports' filters have none
		}
		targets = append(targets, mirredTarget(opts[tcaU32Act]))
	}
	return targets, nil
}

// mirredTarget is the ifindex of the first action in acts (a nested list)
// when it is a mirred one (0: its device is gone), else -1.
func mirredTarget(acts []byte) int {
	list, err := attrs(acts)
	if err != nil {
		return -1
	}
	act, err := attrs(list[1])
	if err != nil || cstr(act[tcaActKind]) != "mirred" {
		return -1
	}
	aopts, err := attrs(act[tcaActOptions])
	if err != nil || len(aopts[tcaMirredParms]) < 28 {
		return -1
	}
	return int(ne.Uint32(aopts[tcaMirredParms][24:]))
}

// ErrNoLink: no link of that name.
var ErrNoLink = os.ErrNotExist

// LinkByName finds a link by name.
func (c *Conn) LinkByName(name string) (Link, error) {
	ls, err := c.Links()
	if err != nil {
		return Link{}, err
	}
	for _, l := range ls {
		if l.Name == name {
			return l, nil
		}
	}
	return Link{}, fmt.Errorf("link %s: %w", name, ErrNoLink)
}

// DelIngress removes the link's ingress qdisc and its filters.
func (c *Conn) DelIngress(index int) error {
	body := append(tcmsg(index, ingressHandle, tcHIngress, 0), attr(unix.TCA_KIND, cstring("ingress"))...)
	if err := c.do(unix.RTM_DELQDISC, 0, body); err != nil {
		return fmt.Errorf("removing the ingress qdisc of link %d: %w", index, err)
	}
	return nil
}
