package vmnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rtnl"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/netns"
)

func TestBridgeable(t *testing.T) {
	up := uint32(unix.IFF_UP)
	for _, c := range []struct {
		name string
		l    rtnl.Link
		want bool
	}{
		{"veth up", rtnl.Link{Name: "eth0", Type: unix.ARPHRD_ETHER, Flags: up, Kind: "veth"}, true},
		{"macvlan up", rtnl.Link{Name: "eth1", Type: unix.ARPHRD_ETHER, Flags: up, Kind: "macvlan"}, true},
		{"down", rtnl.Link{Name: "eth0", Type: unix.ARPHRD_ETHER, Kind: "veth"}, false},
		{"loopback", rtnl.Link{Name: "lo", Type: unix.ARPHRD_LOOPBACK, Flags: up | unix.IFF_LOOPBACK}, false},
		{"our tap", rtnl.Link{Name: "vmtap3", Type: unix.ARPHRD_ETHER, Flags: up, Kind: "tun"}, false},
		{"fallback tunnel", rtnl.Link{Name: "sit0", Type: unix.ARPHRD_SIT, Flags: up}, false},
	} {
		if got := Bridgeable(c.l); got != c.want {
			t.Errorf("%s: Bridgeable = %v, want %v", c.name, got, c.want)
		}
	}
}

// netnsFixture makes two named network namespaces joined by a veth pair:
// "ceth0" in the container's (with an address, a default route and an
// IPv6 address), "peer0" in the other, standing for the bridge's side.
func netnsFixture(t *testing.T) (container, outside string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, taps)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip to build the fixture")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("no /dev/net/tun: %v", err)
	}
	container = fmt.Sprintf("bwvmnet-c-%d", os.Getpid())
	outside = fmt.Sprintf("bwvmnet-o-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{container, outside} {
		run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run("-n", container, "link", "add", "ceth0", "type", "veth", "peer", "name", "peer0", "netns", outside)
	run("-n", container, "link", "set", "ceth0", "mtu", "1400", "up")
	run("-n", outside, "link", "set", "peer0", "up")
	run("-n", container, "addr", "add", "10.99.0.2/24", "dev", "ceth0")
	run("-n", container, "addr", "add", "fd00:99::2/64", "dev", "ceth0", "nodad")
	run("-n", container, "route", "add", "default", "via", "10.99.0.1")
	run("-n", container, "route", "add", "10.98.0.0/16", "dev", "ceth0", "metric", "7")
	return "/run/netns/" + container, "/run/netns/" + outside
}

// in runs fn in the namespace at path.
func in(t *testing.T, path string, fn func()) {
	t.Helper()
	if err := netns.DoPath(path, func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestBridgeCarriesFramesBothWaysAndDescribesTheInterface: Bridge makes
// one tap for the container's veth (not for lo), redirects in both
// directions (a frame sent to the veth from outside comes out of the tap,
// one the "guest" writes to the tap comes out on the other side), Describe
// gives the guest the veth's name, MAC, MTU, addresses and routes, a
// second Bridge of the same namespace is refused, and closing the tap
// removes it.
func TestBridgeCarriesFramesBothWaysAndDescribesTheInterface(t *testing.T) {
	cns, ons := netnsFixture(t)
	taps, err := Bridge(cns)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range taps {
			f.Close()
		}
	}()
	if len(taps) != 1 {
		t.Fatalf("Bridge made %d taps, want 1 (ceth0 only)", len(taps))
	}
	var ceth rtnl.Link
	var nics []vmproto.NIC
	in(t, cns, func() {
		c, err := rtnl.Open()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if ceth, err = c.LinkByName("ceth0"); err != nil {
			t.Error(err)
			return
		}
		tap, err := c.LinkByName(TapName(taps[0]))
		if err != nil {
			t.Error(err)
			return
		}
		if tap.Name != fmt.Sprintf("vmtap%d", ceth.Index) || tap.MTU != 1400 || tap.Flags&unix.IFF_UP == 0 {
			t.Errorf("tap %+v: want vmtap%d, MTU 1400, up", tap, ceth.Index)
		}
		// The interface: the redirect and the ARP mirror; the tap: the
		// guard's redirects back, IPv4 and ARP from its one IPv4
		// address, 4 neighbour advertisements (its IPv6 and a link-local
		// source, by the same two targets), 9 of the rest of IPv6 (those
		// two sources and ::, by TCP, UDP, ICMPv6).
		for _, w := range []struct {
			l    rtnl.Link
			want int
		}{{ceth, 2}, {tap, 2 + 4 + 9}} {
			if n, err := c.Redirects(w.l.Index); err != nil || n != w.want {
				t.Errorf("%s: %d mirred filters (%v), want %d", w.l.Name, n, err, w.want)
			}
		}
		if nics, err = Describe(taps); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	want := []vmproto.NIC{{Name: "ceth0", MAC: ceth.MAC.String(), MTU: 1400,
		Addrs:  []string{"10.99.0.2/24", "fd00:99::2/64"},
		Routes: []vmproto.Route{{Dst: "0.0.0.0/0", Gateway: "10.99.0.1"}, {Dst: "10.98.0.0/16", Metric: 7}}}}
	if len(nics) == 1 {
		// The kernel's own IPv6 routes (multicast, fe80) are left out;
		// only the order of what is kept may differ.
		sortRoutes(nics[0].Routes)
	}
	if !reflect.DeepEqual(nics, want) {
		t.Errorf("Describe:\n got %+v\nwant %+v", nics, want)
	}

	// Outside -> the container's interface -> the tap.
	frame := func(dst, src net.HardwareAddr, text string) []byte {
		b := append(append(append([]byte{}, dst...), src...), 0x88, 0xb5)
		return append(b, []byte(text+strings.Repeat(".", 50))...)
	}
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	var sock int
	in(t, ons, func() {
		sock, err = packetSocket("peer0")
		if err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer unix.Close(sock)
	if _, err := unix.Write(sock, frame(ceth.MAC, other, "to-guest")); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, int(taps[0].Fd()), "to-guest"); !bytes.Equal(got[:6], ceth.MAC) {
		t.Errorf("the frame came out of the tap as %x, want it unchanged", got[:14])
	}
	// The guest -> the tap -> out of the container's interface.
	own := ipv4Packet(net.ParseIP("10.99.0.2"), net.ParseIP("10.99.0.1"), unix.IPPROTO_UDP)
	if _, err := taps[0].Write(guestFrame(ceth.MAC, unix.ETH_P_IP, own, "from-guest")); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, sock, "from-guest"); !bytes.Equal(got[6:12], ceth.MAC) {
		t.Errorf("the frame arrived outside as %x, want it unchanged", got[:14])
	}

	// A second VM on the same interface is refused.
	again, err := Bridge(cns)
	for _, f := range again {
		f.Close()
	}
	if err == nil {
		t.Error("a second Bridge of the same namespace succeeded")
	}

	// Closing the last descriptor removes the tap (and its filters).
	name := TapName(taps[0])
	taps[0].Close()
	taps = nil
	gone := false
	for i := 0; i < 50 && !gone; i++ {
		in(t, cns, func() {
			c, err := rtnl.Open()
			if err != nil {
				return
			}
			defer c.Close()
			_, err = c.LinkByName(name)
			gone = errors.Is(err, rtnl.ErrNoLink)
		})
		time.Sleep(20 * time.Millisecond)
	}
	if !gone {
		t.Errorf("tap %s still there after its file was closed", name)
	}

	// The redirect on the container's interface outlives that VM (the
	// namespace does: a pod's container restarted in its sandbox). The
	// next VM of the namespace takes it over and carries frames again.
	next, err := Bridge(cns)
	if err != nil {
		t.Fatalf("a VM after the first one ended: %v", err)
	}
	defer func() {
		for _, f := range next {
			f.Close()
		}
	}()
	if _, err := unix.Write(sock, frame(ceth.MAC, other, "to-next-guest")); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, int(next[0].Fd()), "to-next-guest"); !bytes.Equal(got[:6], ceth.MAC) {
		t.Errorf("the frame came out of the next VM's tap as %x", got[:14])
	}
}

func sortRoutes(rs []vmproto.Route) {
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			if rs[j].Dst < rs[i].Dst {
				rs[i], rs[j] = rs[j], rs[i]
			}
		}
	}
}

func packetSocket(ifname string) (int, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	// ETH_P_ALL in network byte order, as packet sockets take it.
	var be [2]byte
	binary.BigEndian.PutUint16(be[:], unix.ETH_P_ALL)
	proto := int(binary.NativeEndian.Uint16(be[:]))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// readFrame reads frames from fd until one carries text, for at most 5 s.
func readFrame(t *testing.T, fd int, text string) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if n == 0 {
			continue
		}
		m, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf[:m], []byte(text)) {
			return append([]byte(nil), buf[:m]...)
		}
	}
	t.Fatalf("no frame carrying %q within 5 s", text)
	return nil
}

// TestBridgeKeepsTheNamespacesOwnTrafficThere: after the redirect, a
// socket of the container's namespace itself (an engine's helper there:
// Docker's embedded DNS server asking its upstream) gets a local port of
// the namespace's own block, reaches a server behind the interface over
// UDP and TCP (its neighbour's ARP answer reaches the namespace's stack
// as well as the tap) and gets the answers back, while a datagram to
// another port still goes to the tap, that is to the guest.
func TestBridgeKeepsTheNamespacesOwnTrafficThere(t *testing.T) {
	cns, ons := netnsFixture(t)
	if out, err := exec.Command("ip", "-n", strings.TrimPrefix(ons, "/run/netns/"), "addr", "add", "10.99.0.1/24", "dev", "peer0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	taps, err := Bridge(cns)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range taps {
			f.Close()
		}
	}()
	var srv net.PacketConn
	var tl net.Listener
	in(t, ons, func() {
		if srv, err = net.ListenPacket("udp4", "10.99.0.1:5353"); err != nil {
			t.Error(err)
			return
		}
		if tl, err = net.Listen("tcp4", "10.99.0.1:5354"); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer srv.Close()
	defer tl.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	}()
	go func() {
		c, err := tl.Accept()
		if err == nil {
			c.Write([]byte("hello-tcp"))
			c.Close()
		}
	}()
	var cu net.Conn
	var ct net.Conn
	in(t, cns, func() {
		if cu, err = net.Dial("udp4", "10.99.0.1:5353"); err != nil {
			t.Error(err)
			return
		}
		d := net.Dialer{Timeout: 5 * time.Second}
		if ct, err = d.Dial("tcp4", "10.99.0.1:5354"); err != nil {
			t.Errorf("TCP from the namespace's own stack: %v", err)
		}
	})
	if t.Failed() {
		return
	}
	defer cu.Close()
	defer ct.Close()
	if p := cu.LocalAddr().(*net.UDPAddr).Port; p < 61184 || p > 61439 {
		t.Errorf("the namespace's socket got port %d, want one of 61184-61439", p)
	}
	cu.SetDeadline(time.Now().Add(5 * time.Second))
	cu.Write([]byte("ping"))
	buf := make([]byte, 100)
	if n, err := cu.Read(buf); err != nil || string(buf[:n]) != "echo:ping" {
		t.Errorf("UDP answer to the namespace's own socket: %q, %v", buf[:n], err)
	}
	ct.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(ct); err != nil || string(b) != "hello-tcp" {
		t.Errorf("TCP answer to the namespace's own socket: %q, %v", b, err)
	}
	// A datagram to a port outside the block is the guest's.
	var out net.Conn
	in(t, ons, func() {
		out, err = net.Dial("udp4", "10.99.0.2:5000")
	})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.Write([]byte("to-guest-udp"))
	readFrame(t, int(taps[0].Fd()), "to-guest-udp")
}

// guestFrame builds an Ethernet frame as a guest would write it into its
// tap: dst, src, the ethertype, the payload, then marker, which the peer
// looks for (a redirect passes the frame unchanged, trailing bytes too).
func guestFrame(src net.HardwareAddr, etype uint16, payload []byte, marker string) []byte {
	b := append([]byte{0x02, 0, 0, 0, 0, 0x99}, src...)
	b = binary.BigEndian.AppendUint16(b, etype)
	b = append(b, payload...)
	return append(b, []byte(marker+strings.Repeat(".", 20))...)
}

func ipv4Packet(src, dst net.IP, proto byte) []byte {
	h := []byte{0x45, 0, 0, 48, 0, 1, 0, 0, 64, proto, 0, 0}
	h = append(h, src.To4()...)
	h = append(h, dst.To4()...)
	var sum uint32 // a valid header checksum: the stack would drop it else
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	sum = sum>>16 + sum&0xffff
	sum += sum >> 16
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, make([]byte, 8)...) // a UDP header's room
}

func arpPacket(op uint16, sha net.HardwareAddr, spa net.IP, tpa net.IP) []byte {
	b := []byte{0, 1, 8, 0, 6, 4}
	b = binary.BigEndian.AppendUint16(b, op)
	b = append(b, sha...)
	b = append(b, spa.To4()...)
	b = append(b, make([]byte, 6)...)
	return append(b, tpa.To4()...)
}

// ipv6Packet: the fixed header, next header nh, then body (an ICMPv6 or
// UDP header).
func ipv6Packet(src, dst net.IP, nh byte, body []byte) []byte {
	h := []byte{0x60, 0, 0, 0}
	h = binary.BigEndian.AppendUint16(h, uint16(len(body)))
	h = append(h, nh, 255)
	h = append(h, src.To16()...)
	h = append(h, dst.To16()...)
	return append(h, body...)
}

// TestBridgeCarriesOnlyTheGuestsOwnFrames: a hostile guest writes frames
// into its tap; those that carry the container interface's own MAC and
// addresses leave through the interface, every forged one (another
// source MAC or IP, ARP naming another sender, an IPv6 router
// advertisement or redirect, a VLAN tag, an ethertype of its own) stays
// in the namespace and reaches nobody behind the interface.
func TestBridgeCarriesOnlyTheGuestsOwnFrames(t *testing.T) {
	cns, ons := netnsFixture(t)
	// The neighbour a forwarded packet would go to answers ARP.
	if out, err := exec.Command("ip", "-n", strings.TrimPrefix(ons, "/run/netns/"), "addr", "add", "10.99.0.1/24", "dev", "peer0").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	taps, err := Bridge(cns)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range taps {
			f.Close()
		}
	}()
	var ceth, tap rtnl.Link
	var sock int
	in(t, cns, func() {
		c, err := rtnl.Open()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		if ceth, err = c.LinkByName("ceth0"); err != nil {
			t.Error(err)
		}
		if tap, err = c.LinkByName(TapName(taps[0])); err != nil {
			t.Error(err)
		}
		// A namespace that forwards (an engine's host forwards, and new
		// namespaces copy its setting) still does not forward from the tap.
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0); err != nil {
			t.Error(err)
		}
	})
	in(t, ons, func() {
		if sock, err = packetSocket("peer0"); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer unix.Close(sock)

	mac, tapMAC := ceth.MAC, tap.MAC
	forgedMAC := net.HardwareAddr{0x02, 0x42, 0, 0, 0, 0x66}
	own4, gw4, other4 := net.ParseIP("10.99.0.2"), net.ParseIP("10.99.0.1"), net.ParseIP("10.99.0.3")
	own6, other6 := net.ParseIP("fd00:99::2"), net.ParseIP("fd00:99::3")
	ll6, gw6 := net.ParseIP("fe80::1234"), net.ParseIP("fd00:99::1")
	allNodes := net.ParseIP("ff02::1")
	icmp6 := func(typ byte) []byte { return []byte{typ, 0, 0, 0, 0, 0, 0, 0} }
	udp := make([]byte, 8)
	vlan := append([]byte{0, 7, 8, 0}, ipv4Packet(own4, gw4, unix.IPPROTO_UDP)...)
	for _, c := range []struct {
		name   string
		frame  []byte
		arrive bool
	}{
		{"ipv4-own", guestFrame(mac, unix.ETH_P_IP, ipv4Packet(own4, gw4, unix.IPPROTO_UDP), "ipv4-own"), true},
		{"ipv4-forged-mac", guestFrame(forgedMAC, unix.ETH_P_IP, ipv4Packet(own4, gw4, unix.IPPROTO_UDP), "ipv4-forged-mac"), false},
		{"ipv4-forged-src", guestFrame(mac, unix.ETH_P_IP, ipv4Packet(other4, gw4, unix.IPPROTO_UDP), "ipv4-forged-src"), false},
		{"arp-own", guestFrame(mac, unix.ETH_P_ARP, arpPacket(1, mac, own4, gw4), "arp-own"), true},
		{"arp-reply-own", guestFrame(mac, unix.ETH_P_ARP, arpPacket(2, mac, own4, gw4), "arp-reply-own"), true},
		{"arp-forged-spa", guestFrame(mac, unix.ETH_P_ARP, arpPacket(2, mac, gw4, other4), "arp-forged-spa"), false},
		{"arp-forged-sha", guestFrame(mac, unix.ETH_P_ARP, arpPacket(1, forgedMAC, own4, gw4), "arp-forged-sha"), false},
		{"arp-forged-mac", guestFrame(forgedMAC, unix.ETH_P_ARP, arpPacket(1, mac, own4, gw4), "arp-forged-mac"), false},
		{"ipv6-own-udp", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(own6, gw6, unix.IPPROTO_UDP, udp), "ipv6-own-udp"), true},
		{"ipv6-linklocal-ns", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(ll6, allNodes, unix.IPPROTO_ICMPV6, icmp6(135)), "ipv6-linklocal-ns"), true},
		{"ipv6-dad", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(net.IPv6unspecified, allNodes, unix.IPPROTO_ICMPV6, icmp6(135)), "ipv6-dad"), true},
		{"ipv6-forged-src", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(other6, gw6, unix.IPPROTO_UDP, udp), "ipv6-forged-src"), false},
		{"ipv6-forged-mac", guestFrame(forgedMAC, unix.ETH_P_IPV6, ipv6Packet(own6, gw6, unix.IPPROTO_UDP, udp), "ipv6-forged-mac"), false},
		{"ipv6-router-advert", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(ll6, allNodes, unix.IPPROTO_ICMPV6, icmp6(134)), "ipv6-router-advert"), false},
		{"ipv6-redirect", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(ll6, allNodes, unix.IPPROTO_ICMPV6, icmp6(137)), "ipv6-redirect"), false},
		{"ipv6-hop-by-hop", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(ll6, allNodes, 0, []byte{58, 0, 5, 2, 0, 0, 1, 0}), "ipv6-hop-by-hop"), false},
		{"ipv6-advert-own", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(own6, allNodes, unix.IPPROTO_ICMPV6, append(icmp6(136), own6...)), "ipv6-advert-own"), true},
		{"ipv6-advert-forged-target", guestFrame(mac, unix.ETH_P_IPV6, ipv6Packet(own6, allNodes, unix.IPPROTO_ICMPV6, append(icmp6(136), gw6...)), "ipv6-advert-forged-target"), false},
		{"ipv4-to-the-tap", append(append([]byte{}, tapMAC...), guestFrame(mac, unix.ETH_P_IP, ipv4Packet(other4, gw4, unix.IPPROTO_UDP), "ipv4-to-the-tap")[6:]...), false},
		{"vlan-tagged", guestFrame(mac, unix.ETH_P_8021Q, vlan, "vlan-tagged"), false},
		{"own-ethertype", guestFrame(mac, 0x88b5, nil, "own-ethertype"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := taps[0].Write(c.frame); err != nil {
				t.Fatal(err)
			}
			got := seesFrame(t, sock, c.name, c.arrive)
			if got != c.arrive {
				t.Errorf("the guest's %s frame arrived behind the interface: %v, want %v", c.name, got, c.arrive)
			}
		})
	}
}

// seesFrame tells whether a frame carrying text arrives on fd: it waits
// up to 3 s for one that should (arrive), 300 ms for one that should not.
func seesFrame(t *testing.T, fd int, text string, arrive bool) bool {
	t.Helper()
	wait := 300 * time.Millisecond
	if arrive {
		wait = 3 * time.Second
	}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	marker := []byte(text + ".")
	for time.Now().Before(deadline) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 50)
		if err != nil && !errors.Is(err, unix.EINTR) {
			t.Fatal(err)
		}
		if n == 0 {
			continue
		}
		m, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf[:m], marker) {
			return true
		}
	}
	return false
}
