package vmdns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// Guest-side bounds: a query the host has not answered in pendingWait is
// forgotten (the host's own deadline is shorter), a TCP client idle for
// tcpIdle is hung up on, and at most maxTCPConns are served at once.
const (
	pendingWait = 15 * time.Second
	tcpIdle     = 10 * time.Second
	maxTCPConns = 16
)

// Stub is the guest's side: the agent's listeners on the container's
// loopback nameservers, which pass each query to the host and its answer
// back to the client.
type Stub struct {
	send  func([]byte) error // one KindDNS frame to the host
	udp   []*net.UDPConn
	tcp   []*net.TCPListener
	conns chan struct{} // one per TCP client served
	done  chan struct{}

	mu      sync.Mutex
	next    uint32
	pending map[uint32]*pending
	closed  bool
}

// pending is a query sent to the host: where its answer goes.
type pending struct {
	query []byte
	udp   *net.UDPConn   // the listener it came to, for a UDP query
	from  netip.AddrPort // and its client
	tcp   chan []byte    // or the TCP client's handler
	timer *time.Timer
}

// Listen starts the listeners on port of each of servers (the addresses
// of vmproto.Config.DNS, index for index); send carries a frame to the
// host. The guest's loopback must be up.
func Listen(servers []string, port int, send func([]byte) error) (*Stub, error) {
	if err := vmproto.CheckDNS(servers); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	s := &Stub{send: send, conns: make(chan struct{}, maxTCPConns), done: make(chan struct{}), pending: map[uint32]*pending{}}
	// SO_REUSEADDR: a payload that serves DNS itself on the wildcard
	// address over UDP, with SO_REUSEADDR as DNS servers set it, still
	// binds; the more specific address stays the agent's.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
		return errors.Join(err, serr)
	}}
	for i, a := range servers {
		addr := net.JoinHostPort(a, strconv.Itoa(port))
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("dns: listening on %s (udp) in the guest for the container's nameserver: %w", addr, err)
		}
		s.udp = append(s.udp, pc.(*net.UDPConn))
		l, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("dns: listening on %s (tcp) in the guest for the container's nameserver: %w", addr, err)
		}
		s.tcp = append(s.tcp, l.(*net.TCPListener))
		go s.serveUDP(i, pc.(*net.UDPConn))
		go s.serveTCP(i, l.(*net.TCPListener))
	}
	return s, nil
}

// Close stops the listeners and forgets the queries in flight.
func (s *Stub) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for id, p := range s.pending {
		p.timer.Stop()
		delete(s.pending, id)
	}
	s.mu.Unlock()
	close(s.done)
	for _, c := range s.udp {
		c.Close()
	}
	for _, l := range s.tcp {
		l.Close()
	}
}

// add registers p and returns its id; false when MaxInFlight are pending.
func (s *Stub) add(p *pending) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.pending) >= MaxInFlight {
		return 0, false
	}
	s.next++
	id := s.next
	p.timer = time.AfterFunc(pendingWait, func() { s.take(id) })
	s.pending[id] = p
	return id, true
}

func (s *Stub) take(id uint32) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pending[id]
	if p != nil {
		p.timer.Stop()
		delete(s.pending, id)
	}
	return p
}

// forward sends p's query to the host under a new id; false if it could
// not (too many in flight, the port gone).
func (s *Stub) forward(server int, transport byte, p *pending) bool {
	id, ok := s.add(p)
	if !ok {
		return false
	}
	if err := s.send(vmproto.DNS(vmproto.DNSFrame{ID: id, Server: server, Transport: transport, Msg: p.query})); err != nil {
		s.take(id)
		return false
	}
	return true
}

// Answer takes one KindDNS frame from the host: the answer to a pending
// query, or an empty message, which the client gets as SERVFAIL (as a
// nameserver that cannot answer says), so that it asks its next one now.
func (s *Stub) Answer(frame []byte) {
	f, err := vmproto.ParseDNS(frame)
	if err != nil {
		return
	}
	p := s.take(f.ID)
	if p == nil {
		return
	}
	msg := f.Msg
	if len(msg) == 0 {
		msg = servfail(p.query)
	}
	if p.tcp != nil {
		p.tcp <- msg // buffered: one answer per query
		return
	}
	if msg != nil {
		_, _ = p.udp.WriteToUDPAddrPort(msg, p.from)
	}
}

func (s *Stub) serveUDP(server int, c *net.UDPConn) {
	buf := make([]byte, vmproto.MaxDNSMessage)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n < minMessage {
			continue
		}
		// Over MaxInFlight the query is dropped, as a busy server drops
		// it: the client asks again.
		s.forward(server, vmproto.DNSUDP, &pending{query: append([]byte(nil), buf[:n]...), udp: c, from: from})
	}
}

func (s *Stub) serveTCP(server int, l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: not a spin
			continue
		}
		select {
		case s.conns <- struct{}{}:
			go func() {
				defer func() { <-s.conns }()
				s.serveConn(server, c)
			}()
		default:
			c.Close()
		}
	}
}

// serveConn answers a TCP client's length-prefixed queries in turn until
// it hangs up or idles.
func (s *Stub) serveConn(server int, c net.Conn) {
	defer c.Close()
	for {
		_ = c.SetDeadline(time.Now().Add(tcpIdle))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if n < minMessage {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		ch := make(chan []byte, 1)
		if !s.forward(server, vmproto.DNSTCP, &pending{query: q, tcp: ch}) {
			return
		}
		var ans []byte
		select {
		case ans = <-ch:
		case <-time.After(pendingWait):
		case <-s.done:
		}
		if ans == nil {
			return
		}
		out := make([]byte, 2+len(ans))
		binary.BigEndian.PutUint16(out, uint16(len(ans)))
		copy(out[2:], ans)
		_ = c.SetDeadline(time.Now().Add(tcpIdle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// servfail is the SERVFAIL answer to query: its header with QR, RA and
// the rcode set and no answer records, its question and EDNS as they
// came.
func servfail(query []byte) []byte {
	if len(query) < minMessage {
		return nil
	}
	r := append([]byte(nil), query...)
	r[2] = 0x80 | query[2]&0x79 // QR; the opcode and RD as asked
	r[3] = 0x80 | 2             // RA, SERVFAIL
	clear(r[6:10])              // no answer or authority records
	return r
}
