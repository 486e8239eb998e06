package vmdns

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// Timeouts of one forwarded query: a resolver gives a nameserver 5 s
// over UDP before it asks the next (glibc's and musl's default), and a
// TCP query, which follows a truncated answer, somewhat more.
const (
	udpTimeout = 5 * time.Second
	tcpTimeout = 10 * time.Second
)

// minMessage is a DNS header's size: anything shorter is not a query.
const minMessage = 12

// Forwarder is the host's side: it runs in the container's init, in the
// container's network namespace, and asks the container's loopback
// nameservers what the guest's agent sends it.
type Forwarder struct {
	servers []netip.Addr
	port    uint16 // Port; tests use their own
	udpWait time.Duration
	tcpWait time.Duration

	slots   chan struct{} // one per query in flight
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex // closed and wg.Add
	closed  bool
	wg      sync.WaitGroup
	dropped atomic.Uint64
}

// NewForwarder forwards to servers (LoopbackNameservers), and to nothing
// else.
func NewForwarder(servers []netip.Addr) *Forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &Forwarder{
		servers: servers, port: Port, udpWait: udpTimeout, tcpWait: tcpTimeout,
		slots: make(chan struct{}, MaxInFlight), ctx: ctx, cancel: cancel,
	}
}

// Servers are the addresses the agent is to listen on, in the order a
// query's server index refers to (vmproto.Config.DNS).
func (f *Forwarder) Servers() []string {
	out := make([]string, len(f.servers))
	for i, a := range f.servers {
		out[i] = a.String()
	}
	return out
}

// Dropped counts the frames refused: malformed, naming no server of the
// list, or over MaxInFlight.
func (f *Forwarder) Dropped() uint64 { return f.dropped.Load() }

// Handle takes one KindDNS frame from the guest and returns at once; the
// answer (vmproto.DNS, an empty message when there is none) goes to reply
// from a goroutine of its own, which holds its in-flight slot until reply
// returns, so that a guest that stops reading its port stops its own
// queries, not the host.
func (f *Forwarder) Handle(frame []byte, reply func([]byte)) {
	q, err := vmproto.ParseDNS(frame)
	if err != nil || q.Server >= len(f.servers) || len(q.Msg) < minMessage {
		f.dropped.Add(1)
		return
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.dropped.Add(1)
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		<-f.slots
		return
	}
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		ans := f.ask(q)
		reply(vmproto.DNS(vmproto.DNSFrame{ID: q.ID, Server: q.Server, Transport: q.Transport, Msg: ans}))
	}()
}

// Close ends the queries in flight and waits for their goroutines. The
// caller closes the port first: a reply blocked on it returns then.
func (f *Forwarder) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// ask sends q's message to its nameserver and returns the answer, or nil.
func (f *Forwarder) ask(q vmproto.DNSFrame) []byte {
	to := netip.AddrPortFrom(f.servers[q.Server], f.port)
	wait := f.udpWait
	network := "udp"
	if q.Transport == vmproto.DNSTCP {
		wait, network = f.tcpWait, "tcp"
	}
	ctx, cancel := context.WithTimeout(f.ctx, wait)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, to.String())
	if err != nil {
		return nil
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	// Close, or the end of the VM, ends the wait at once.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if network == "udp" {
		return askUDP(c, q.Msg)
	}
	return askTCP(c, q.Msg)
}

// askUDP sends msg and waits for the datagram that answers it: the
// socket is connected, so only the nameserver's come in, and one with
// another id (a late answer to nothing of ours) is skipped.
func askUDP(c net.Conn, msg []byte) []byte {
	if _, err := c.Write(msg); err != nil {
		return nil
	}
	buf := make([]byte, vmproto.MaxDNSMessage)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		if n >= minMessage && buf[0] == msg[0] && buf[1] == msg[1] {
			return buf[:n]
		}
	}
}

// askTCP sends msg with its length prefix and reads one answer.
func askTCP(c net.Conn, msg []byte) []byte {
	out := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	copy(out[2:], msg)
	if _, err := c.Write(out); err != nil {
		return nil
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < minMessage {
		return nil
	}
	ans := make([]byte, n)
	if _, err := io.ReadFull(c, ans); err != nil {
		return nil
	}
	return ans
}
