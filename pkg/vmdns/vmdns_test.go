package vmdns

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

func TestLoopbackNameservers(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string
	}{
		{"docker's embedded server", "nameserver 127.0.0.11\noptions ndots:0\n", []string{"127.0.0.11"}},
		{"systemd-resolved's stub", "# managed\nnameserver 127.0.0.53\nsearch example.org\n", []string{"127.0.0.53"}},
		{"no loopback", "nameserver 10.0.0.1\nnameserver 2001:db8::1\n", nil},
		{"mixed, in order", "nameserver 10.0.0.1\nnameserver ::1\nnameserver 127.0.0.2\n", []string{"::1", "127.0.0.2"}},
		{"only the first three count", "nameserver 1.1.1.1\nnameserver 8.8.8.8\nnameserver 9.9.9.9\nnameserver 127.0.0.11\n", nil},
		{"duplicates once", "nameserver 127.0.0.11\nnameserver 127.0.0.11\n", []string{"127.0.0.11"}},
		{"mapped v4 unmapped", "nameserver ::ffff:127.0.0.1\n", []string{"127.0.0.1"}},
		{"junk and zones skipped", "nameserver\nnameserver bogus\nnameserver ::1%lo\n nameserver 127.0.0.9 \n", []string{"127.0.0.9"}},
		{"not a nameserver line", "search 127.0.0.11\n#nameserver 127.0.0.11\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, a := range LoopbackNameservers([]byte(tc.conf)) {
				got = append(got, a.String())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestReadNameserversStaysInTheRootfs: the file is resolved as the guest
// sees it, an absolute symlink inside the rootfs, not on the host; a
// missing file or a directory gives none.
func TestReadNameserversStaysInTheRootfs(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	if ns, err := ReadNameservers(root); err != nil || len(ns) != 0 {
		t.Errorf("missing file: %v, %v; want none", ns, err)
	}
	os.WriteFile(filepath.Join(root, "run/resolv.conf"), []byte("nameserver 127.0.0.11\n"), 0o644)
	if err := os.Symlink("/run/resolv.conf", filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	ns, err := ReadNameservers(root)
	if err != nil || len(ns) != 1 || ns[0] != netip.MustParseAddr("127.0.0.11") {
		t.Errorf("symlink inside the rootfs: %v, %v; want 127.0.0.11", ns, err)
	}
	os.Remove(filepath.Join(root, "etc/resolv.conf"))
	os.Mkdir(filepath.Join(root, "etc/resolv.conf"), 0o755)
	if ns, err := ReadNameservers(root); err != nil || len(ns) != 0 {
		t.Errorf("a directory: %v, %v; want none", ns, err)
	}
}

// query is a minimal DNS query for name's A record with id.
func query(id uint16, name string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD, one question
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, 0, 0, 1, 0, 1)
}

// answer is q answered with the A record 10.1.2.3.
func answer(q []byte) []byte {
	r := append([]byte(nil), q...)
	r[2], r[3] = 0x81, 0x80
	r[7] = 1
	return append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3)
}

// fakeServer answers every query, over UDP and TCP, on 127.0.0.1 at a
// port of its own; with mute it reads and never answers.
func fakeServer(t *testing.T, mute bool) (port int, seen *atomic.Int64) {
	t.Helper()
	seen = new(atomic.Int64)
	var pc net.PacketConn
	var l net.Listener
	for range 20 {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		port = pc.LocalAddr().(*net.UDPAddr).Port
		if l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			break
		}
		pc.Close()
	}
	if l == nil {
		t.Fatal("no port free for both UDP and TCP")
	}
	t.Cleanup(func() { pc.Close(); l.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			seen.Add(1)
			if !mute {
				pc.WriteTo(answer(buf[:n]), from)
			}
		}
	}()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var h [2]byte
				if _, err := io.ReadFull(c, h[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(h[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				seen.Add(1)
				if mute {
					time.Sleep(time.Minute)
					return
				}
				a := answer(q)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
			}()
		}
	}()
	return port, seen
}

// freePort is a port free on 127.0.0.1 for both UDP and TCP, now.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
			pc.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// pair is a stub and a forwarder wired together as the agent and the
// monitor are over the VM's port: the stub on 127.0.0.1:stubPort, the
// forwarder asking 127.0.0.1:serverPort.
func pair(t *testing.T, serverPort int) (stubPort int, f *Forwarder) {
	t.Helper()
	f = NewForwarder([]netip.Addr{netip.MustParseAddr("127.0.0.1")})
	f.port = uint16(serverPort)
	f.udpWait, f.tcpWait = time.Second, time.Second
	var s *Stub
	ready := make(chan struct{})
	var err error
	for range 5 { // a port found free may be taken before Listen
		stubPort = freePort(t)
		if s, err = Listen([]string{"127.0.0.1"}, stubPort, func(b []byte) error {
			f.Handle(b, func(a []byte) { <-ready; s.Answer(a) })
			return nil
		}); err == nil {
			break
		}
	}
	close(ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); f.Close() })
	return stubPort, f
}

func udpAsk(t *testing.T, port int, q []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(q)
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer over UDP: %v", err)
	}
	return buf[:n]
}

func tcpAsk(t *testing.T, port int, qs ...[]byte) [][]byte {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var out [][]byte
	for _, q := range qs {
		c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(q))), q...))
		var h [2]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			t.Fatalf("no answer over TCP: %v", err)
		}
		a := make([]byte, binary.BigEndian.Uint16(h[:]))
		if _, err := io.ReadFull(c, a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// TestStubAndForwarderAnswerOverUDPAndTCP: a query to the stub reaches
// the nameserver through the forwarder, over the transport it came by,
// and its answer comes back to the client; a TCP client may ask several
// in turn on one connection.
func TestStubAndForwarderAnswerOverUDPAndTCP(t *testing.T) {
	server, seen := fakeServer(t, false)
	stub, _ := pair(t, server)
	q := query(0x1234, "probe")
	if got := udpAsk(t, stub, q); !bytes.Equal(got, answer(q)) {
		t.Errorf("UDP: %x, want %x", got, answer(q))
	}
	q2 := query(0x4321, "other")
	got := tcpAsk(t, stub, q, q2)
	if !bytes.Equal(got[0], answer(q)) || !bytes.Equal(got[1], answer(q2)) {
		t.Errorf("TCP: %x, want the two answers", got)
	}
	if n := seen.Load(); n != 3 {
		t.Errorf("the server saw %d queries, want 3", n)
	}
}

// TestNoNameserverIsServfailNotSilence: when nothing answers on the
// nameserver's address (a refused connection), the client gets SERVFAIL
// for its query at once, as from a nameserver that cannot answer.
func TestNoNameserverIsServfailNotSilence(t *testing.T) {
	stub, _ := pair(t, freePort(t))
	q := query(0x7777, "nobody")
	start := time.Now()
	got := udpAsk(t, stub, q)
	if len(got) != len(q) || got[0] != 0x77 || got[1] != 0x77 || got[2]&0x80 == 0 || got[3]&0x0f != 2 {
		t.Errorf("answer %x, want SERVFAIL for id 7777", got)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("SERVFAIL took %v: a refused query must not wait for the timeout", d)
	}
	if a := tcpAsk(t, stub, q); a[0][3]&0x0f != 2 {
		t.Errorf("TCP: %x, want SERVFAIL", a[0])
	}
}

func TestServfail(t *testing.T) {
	q := query(0xabcd, "x")
	q[2] |= 0x02 // TC in a query: not carried over
	r := servfail(q)
	if r[0] != 0xab || r[1] != 0xcd || r[2] != 0x81 || r[3] != 0x82 || !bytes.Equal(r[4:6], q[4:6]) || !bytes.Equal(r[12:], q[12:]) {
		t.Errorf("servfail %x of %x", r, q)
	}
	if servfail(q[:11]) != nil {
		t.Error("a short query got an answer")
	}
}

// TestForwarderOnlyAsksItsOwnServers: frames the guest forges (a server
// index off the list, a short or oversized message, an unknown
// transport) are dropped before any socket is made.
func TestForwarderOnlyAsksItsOwnServers(t *testing.T) {
	server, seen := fakeServer(t, false)
	f := NewForwarder([]netip.Addr{netip.MustParseAddr("127.0.0.1")})
	f.port = uint16(server)
	defer f.Close()
	good := query(1, "a")
	frames := map[string][]byte{
		"server 1 of 1":  vmproto.DNS(vmproto.DNSFrame{ID: 1, Server: 1, Transport: vmproto.DNSUDP, Msg: good}),
		"server 255":     vmproto.DNS(vmproto.DNSFrame{ID: 1, Server: 255, Transport: vmproto.DNSUDP, Msg: good}),
		"short message":  vmproto.DNS(vmproto.DNSFrame{ID: 1, Transport: vmproto.DNSUDP, Msg: good[:11]}),
		"oversized":      vmproto.DNS(vmproto.DNSFrame{ID: 1, Transport: vmproto.DNSTCP, Msg: make([]byte, 65536)}),
		"transport 'x'":  vmproto.DNS(vmproto.DNSFrame{ID: 1, Transport: 'x', Msg: good}),
		"header cut off": {0, 0, 0, 1, 0},
	}
	for name, fr := range frames {
		before := f.Dropped()
		replied := false
		f.Handle(fr, func([]byte) { replied = true })
		if f.Dropped() != before+1 || replied {
			t.Errorf("%s: not dropped (dropped %d→%d, replied %v)", name, before, f.Dropped(), replied)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := seen.Load(); n != 0 {
		t.Errorf("the server saw %d queries from forged frames", n)
	}
}

// TestForwarderFloodIsBounded: a guest that floods queries at a server
// that never answers, and stops reading its port, holds at most
// MaxInFlight queries (goroutines, sockets, buffers); the rest are
// dropped at once, the host's memory stays flat, and Close ends it all.
func TestForwarderFloodIsBounded(t *testing.T) {
	server, _ := fakeServer(t, true)
	f := NewForwarder([]netip.Addr{netip.MustParseAddr("127.0.0.1")})
	f.port = uint16(server)
	f.udpWait, f.tcpWait = time.Minute, time.Minute
	stuck := make(chan struct{}) // the guest does not read: replies block
	var replies atomic.Int64
	reply := func([]byte) { replies.Add(1); <-stuck }

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	const n = 20000
	for i := range n {
		tr := vmproto.DNSUDP
		if i%2 == 1 {
			tr = vmproto.DNSTCP
		}
		q := vmproto.DNS(vmproto.DNSFrame{ID: uint32(i), Transport: tr, Msg: query(uint16(i), "flood")})
		start := time.Now()
		f.Handle(q, reply)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Handle blocked %v on query %d", d, i)
		}
	}
	if d := f.Dropped(); d != n-MaxInFlight {
		t.Errorf("dropped %d of %d, want all but %d", d, n, MaxInFlight)
	}
	if l := len(f.slots); l != MaxInFlight {
		t.Errorf("%d queries in flight, want %d", l, MaxInFlight)
	}
	// The forwarder's own, plus the fake server's for each TCP query.
	if g := runtime.NumGoroutine() - g0; g > MaxInFlight+MaxInFlight/2+8 {
		t.Errorf("%d goroutines more after the flood, want at most %d", g, MaxInFlight+MaxInFlight/2+8)
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	if grew := int64(m1.HeapInuse) - int64(m0.HeapInuse); grew > 16<<20 {
		t.Errorf("heap grew by %d MiB for a flood of %d queries", grew>>20, n)
	}
	// Close cancels the queries waiting on the server; their (empty)
	// replies block until the port goes, as at the VM's end.
	closed := make(chan struct{})
	go func() { f.Close(); close(closed) }()
	time.Sleep(200 * time.Millisecond)
	close(stuck)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if r := replies.Load(); r != MaxInFlight {
		t.Errorf("%d replies, want one per query in flight (%d)", r, MaxInFlight)
	}
	f.Handle(vmproto.DNS(vmproto.DNSFrame{Transport: vmproto.DNSUDP, Msg: query(1, "late")}), func([]byte) { t.Error("a closed forwarder replied") })
}

// TestStubBoundsItsPendingQueries: with the host silent, the stub keeps
// at most MaxInFlight queries and drops the rest.
func TestStubBoundsItsPendingQueries(t *testing.T) {
	var mu sync.Mutex
	sent := 0
	port := freePort(t)
	s, err := Listen([]string{"127.0.0.1"}, port, func([]byte) error { mu.Lock(); sent++; mu.Unlock(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 1000 {
		c.Write(query(uint16(i), "flood"))
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := sent
		mu.Unlock()
		if n >= MaxInFlight {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sent != MaxInFlight || len(s.pending) != MaxInFlight {
		t.Errorf("sent %d to the host, %d pending; want %d each", sent, len(s.pending), MaxInFlight)
	}
}

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, servers := range [][]string{{"10.0.0.1"}, {"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, {"bogus"}} {
		if s, err := Listen(servers, freePort(t), func([]byte) error { return nil }); err == nil {
			s.Close()
			t.Errorf("Listen(%q) accepted", servers)
		}
	}
}
