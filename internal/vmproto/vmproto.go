// Package vmproto is the wire between the runtime (pkg/vm, on the host) and
// the guest agent (pkg/vmagent, /init inside the VM): one virtio-serial
// port carries the payload's configuration, its stdin, stdout and stderr,
// signals and its exit status as length-prefixed frames.
//
// Threat: the guest is where hostile code runs, so everything the host
// reads from this port is input from the attacker's side of the wall. A
// frame is bounded (MaxFrame) before it is allocated, unknown kinds are an
// error, and the host copies payload bytes to the person's stdout/stderr:
// no frame names a host path. The one request the host acts on is a DNS
// query (KindDNS), which names a nameserver only by its index in the list
// the host sent (pkg/vmdns bounds the rest).
package vmproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PortName is the virtio-serial port's name; the agent finds its device
// under /sys/class/virtio-ports by it.
const PortName = "run.bulwark.0"

// EnvAgent on the kernel command line (which the kernel hands to /init as
// environment) makes the bulwark binary run as the guest agent.
const EnvAgent = "BULWARK_AGENT"

// EnvPayload marks the agent's child that applies the process config and
// execs the payload.
const EnvPayload = "_BULWARK_VMPAYLOAD"

// ModuleOrder is the initramfs file listing, one per line, the modules
// the agent loads, dependencies first.
const ModuleOrder = "/lib/modules/bulwark.order"

// NetModuleOrder lists the modules of the guest's NIC, which the agent
// loads only when the config has NICs.
const NetModuleOrder = "/lib/modules/bulwark-net.order"

// MountTag is the tag the rootfs is shared under, for virtio-fs and 9p.
const MountTag = "rootfs"

// Frame kinds.
const (
	KindConfig   byte = 'C' // host -> guest: Config as JSON
	KindStdin    byte = 'I' // host -> guest: stdin bytes
	KindStdinEOF byte = 'E' // host -> guest: stdin closed
	KindSignal   byte = 'S' // host -> guest: one byte, a signal number for the payload
	KindReady    byte = 'H' // guest -> host: the agent runs (empty)
	KindStdout   byte = 'O' // guest -> host: stdout bytes
	KindStderr   byte = 'R' // guest -> host: stderr bytes
	KindExit     byte = 'X' // guest -> host: 4 bytes, the payload's status (128+N for a signal)
	KindFail     byte = 'F' // guest -> host: the agent could not run the payload; the message
	// KindSession carries one frame of an exec'd process, both ways:
	// 4 bytes of session id, the inner frame's kind, its data. The
	// inner kinds are the payload's: Config (the OCI process as JSON),
	// Stdin, StdinEOF, Signal; Stdout, Stderr, Exit, Fail.
	KindSession byte = 'M'
	// KindResize (host -> guest): 4 bytes, a terminal's rows then
	// columns, each big-endian uint16: in a session the exec'd process's
	// terminal, outside one the payload's.
	KindResize byte = 'W'
	// KindProcs (session only): host -> guest asks for the guest's
	// processes (empty); guest -> host answers with []Proc as JSON, and
	// the answer ends the session.
	KindProcs byte = 'P'
	KindMark  byte = 'T' // guest -> host: a boot step reached: 8 bytes of guest CLOCK_BOOTTIME (ns), then its name
	// KindDNS carries one DNS message, both ways (DNSFrame): guest ->
	// host a query the agent took on one of Config.DNS's addresses in
	// the guest, host -> guest the nameserver's answer to it, or an
	// empty message when there is none (the agent answers SERVFAIL).
	KindDNS byte = 'N'
)

// Session wraps an exec'd process's frame for KindSession.
func Session(id uint32, kind byte, data []byte) []byte {
	b := make([]byte, 5+len(data))
	binary.BigEndian.PutUint32(b, id)
	b[4] = kind
	copy(b[5:], data)
	return b
}

// ParseSession unwraps a KindSession frame.
func ParseSession(b []byte) (id uint32, kind byte, data []byte, err error) {
	if len(b) < 5 {
		return 0, 0, nil, fmt.Errorf("%w: session frame of %d bytes", ErrFrame, len(b))
	}
	return binary.BigEndian.Uint32(b), b[4], b[5:], nil
}

// SessionStream is an io.Writer sending each write as session frames.
type SessionStream struct {
	C    *Conn
	ID   uint32
	Kind byte
}

func (s SessionStream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > 64<<10 {
			chunk = chunk[:64<<10]
		}
		if err := s.C.Write(KindSession, Session(s.ID, s.Kind, chunk)); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// MaxFrame bounds one frame's payload: a config with a large seccomp
// profile fits, a hostile length does not make the reader allocate it.
const MaxFrame = 4 << 20

// Config is what the agent needs to run the payload.
type Config struct {
	// Spec is the container's OCI spec; the agent applies its process,
	// hostname, root.readonly, mounts it can make inside the guest
	// (proc, sysfs, tmpfs, devpts, mqueue), masked and read-only paths,
	// and linux.seccomp. Host bind mounts do not reach the guest.
	Spec *specs.Spec `json:"spec"`
	// FS is how the rootfs is shared: "virtiofs" or "9p".
	FS string `json:"fs"`
	// Seccomp is Spec's linux.seccomp as the host compiled it (a BPF
	// program for the host's architecture, which the guest shares):
	// libseccomp's compile, ~10 ms on the host, costs the guest hundreds
	// under TCG. Empty when the spec has no filter to install.
	Seccomp []byte `json:"seccomp,omitempty"`
	// TTY, set by the agent for its child when process.terminal asks
	// for one, is the pty slave's path inside the rootfs: the child
	// makes it its controlling terminal and stdio after the chroot.
	TTY string `json:"tty,omitempty"`
	// NICs are the container's network interfaces the guest gets, one
	// virtio-net device each, in QEMU's order; none: only loopback.
	NICs []NIC `json:"nics,omitempty"`
	// DNS are the loopback nameservers of the container's resolv.conf
	// (Docker's 127.0.0.11, a host's 127.0.0.53 under --network host),
	// which the guest's own loopback cannot serve: the agent listens on
	// each of them, port 53, and forwards what it gets to the host
	// (KindDNS) naming the server by its index here.
	DNS []string `json:"dns,omitempty"`
}

// MaxNameservers is how many nameservers a resolv.conf names that a
// resolver uses (glibc's and musl's MAXNS).
const MaxNameservers = 3

// CheckDNS reports the first of Config.DNS that is not a loopback
// address, or one too many.
func CheckDNS(servers []string) error {
	if len(servers) > MaxNameservers {
		return fmt.Errorf("%w: %d nameservers (at most %d)", ErrFrame, len(servers), MaxNameservers)
	}
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.IsLoopback() || a.Zone() != "" {
			return fmt.Errorf("%w: dns %q: not a loopback address", ErrFrame, s)
		}
	}
	return nil
}

// MaxDNSMessage bounds a DNS message: UDP's datagram and TCP's 16-bit
// length prefix allow no more.
const MaxDNSMessage = 65535

// dnsHeader is a DNS frame's header: id, server, transport.
const dnsHeader = 6

// DNS transports: how the query reached the agent, and so how the host
// asks the nameserver (a client that got a truncated answer over UDP
// asks again over TCP, and must get the whole answer).
const (
	DNSUDP byte = 'u'
	DNSTCP byte = 't'
)

// DNSFrame is KindDNS's payload: the agent's id for the query (the host
// echoes it), the nameserver's index in Config.DNS, the transport, and
// the DNS message itself.
type DNSFrame struct {
	ID        uint32
	Server    int
	Transport byte
	Msg       []byte
}

// DNS encodes f for KindDNS.
func DNS(f DNSFrame) []byte {
	b := make([]byte, dnsHeader+len(f.Msg))
	binary.BigEndian.PutUint32(b, f.ID)
	b[4] = byte(f.Server)
	b[5] = f.Transport
	copy(b[dnsHeader:], f.Msg)
	return b
}

// ParseDNS decodes KindDNS's payload. The message aliases b. Its bounds
// are checked here; what the server index names is the reader's to
// check against its own list.
func ParseDNS(b []byte) (DNSFrame, error) {
	if len(b) < dnsHeader {
		return DNSFrame{}, fmt.Errorf("%w: dns frame of %d bytes", ErrFrame, len(b))
	}
	if len(b)-dnsHeader > MaxDNSMessage {
		return DNSFrame{}, fmt.Errorf("%w: dns message of %d bytes (at most %d)", ErrFrame, len(b)-dnsHeader, MaxDNSMessage)
	}
	f := DNSFrame{ID: binary.BigEndian.Uint32(b), Server: int(b[4]), Transport: b[5], Msg: b[dnsHeader:]}
	if f.Transport != DNSUDP && f.Transport != DNSTCP {
		return DNSFrame{}, fmt.Errorf("%w: dns transport %#x", ErrFrame, f.Transport)
	}
	return f, nil
}

// NIC is one of the container's network interfaces, bridged into the
// guest (pkg/vmnet): the agent gives the guest's device with this MAC the
// interface's name, MTU, addresses and routes, so that the network the
// container was attached to sees the guest where it saw the container.
type NIC struct {
	Name   string   `json:"name"`
	MAC    string   `json:"mac"`
	MTU    int      `json:"mtu,omitempty"`
	Addrs  []string `json:"addrs,omitempty"` // CIDR with the host part: 10.89.0.2/24
	Routes []Route  `json:"routes,omitempty"`
}

// Route is one route of the interface, from the container's main table.
type Route struct {
	Dst     string `json:"dst"`               // CIDR; 0.0.0.0/0 or ::/0 for the default route
	Gateway string `json:"gateway,omitempty"` // empty: on-link
	Src     string `json:"src,omitempty"`     // the preferred source address
	Metric  uint32 `json:"metric,omitempty"`
}

// Check reports the first field of n that does not parse, naming it.
func (n *NIC) Check() error {
	if n.Name == "" || len(n.Name) > 15 || strings.ContainsAny(n.Name, "/: \t\n\x00") {
		return fmt.Errorf("%w: nic name %q", ErrFrame, n.Name)
	}
	if hw, err := net.ParseMAC(n.MAC); err != nil || len(hw) != 6 {
		return fmt.Errorf("%w: nic %s: mac %q", ErrFrame, n.Name, n.MAC)
	}
	if n.MTU < 0 || n.MTU > 65535 {
		return fmt.Errorf("%w: nic %s: mtu %d", ErrFrame, n.Name, n.MTU)
	}
	for _, a := range n.Addrs {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("%w: nic %s: address %q", ErrFrame, n.Name, a)
		}
	}
	for _, r := range n.Routes {
		d, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			return fmt.Errorf("%w: nic %s: route %q", ErrFrame, n.Name, r.Dst)
		}
		for _, f := range [...]struct{ what, a string }{{"gateway", r.Gateway}, {"src", r.Src}} {
			what, a := f.what, f.a
			if a == "" {
				continue
			}
			ip, err := netip.ParseAddr(a)
			if err != nil || ip.Is4() != d.Addr().Is4() {
				return fmt.Errorf("%w: nic %s: route %s: %s %q", ErrFrame, n.Name, r.Dst, what, a)
			}
		}
	}
	return nil
}

// Conn reads and writes frames; writes are serialised so that several
// goroutines (stdout, stderr, exit) can share the port.
type Conn struct {
	r  io.Reader
	mu sync.Mutex
	w  io.Writer
}

// NewConn frames rw.
func NewConn(r io.Reader, w io.Writer) *Conn { return &Conn{r: r, w: w} }

// ErrFrame is a malformed or oversized frame.
var ErrFrame = errors.New("vmproto: bad frame")

// Write sends one frame.
func (c *Conn) Write(kind byte, data []byte) error {
	if len(data) > MaxFrame {
		return fmt.Errorf("%w: %d bytes of kind %q", ErrFrame, len(data), kind)
	}
	buf := make([]byte, 5+len(data))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(data)))
	copy(buf[5:], data)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(buf)
	return err
}

// Read returns the next frame.
func (c *Conn) Read() (kind byte, data []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("%w: kind %q claims %d bytes (at most %d)", ErrFrame, hdr[0], n, MaxFrame)
	}
	data = make([]byte, n)
	if _, err := io.ReadFull(c.r, data); err != nil {
		return 0, nil, fmt.Errorf("%w: kind %q cut short: %v", ErrFrame, hdr[0], err)
	}
	return hdr[0], data, nil
}

// Stream is an io.Writer that sends each write as frames of one kind.
type Stream struct {
	C    *Conn
	Kind byte
}

func (s Stream) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > 64<<10 {
			chunk = chunk[:64<<10]
		}
		if err := s.C.Write(s.Kind, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// ExitStatus encodes a status for KindExit.
func ExitStatus(code int) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	return b[:]
}

// maxMarkName bounds a mark's name: the host prints it.
const maxMarkName = 64

// Mark encodes a KindMark: the step's name and when the guest reached it,
// on the guest's boot clock (the time since its kernel started).
func Mark(name string, at time.Duration) []byte {
	if len(name) > maxMarkName {
		name = name[:maxMarkName]
	}
	b := make([]byte, 8+len(name))
	binary.BigEndian.PutUint64(b, uint64(at))
	copy(b[8:], name)
	return b
}

// ParseMark decodes KindMark's payload. The name comes from the guest:
// only short printable ASCII is accepted, so that printing it cannot
// drive the person's terminal.
func ParseMark(b []byte) (string, time.Duration, error) {
	if len(b) < 8 || len(b) > 8+maxMarkName {
		return "", 0, fmt.Errorf("%w: mark of %d bytes", ErrFrame, len(b))
	}
	for _, c := range b[8:] {
		if c < 0x21 || c > 0x7e {
			return "", 0, fmt.Errorf("%w: mark name with byte %#x", ErrFrame, c)
		}
	}
	return string(b[8:]), time.Duration(binary.BigEndian.Uint64(b)), nil
}

// maxFail bounds the part of a KindFail message the host shows.
const maxFail = 1024

// ParseFail makes KindFail's message, which comes from the guest, fit to
// show: its first maxFail bytes, Printable.
func ParseFail(b []byte) string {
	if len(b) > maxFail {
		return Printable(string(b[:maxFail])) + fmt.Sprintf("... (%d bytes in all)", len(b))
	}
	return Printable(string(b))
}

// Printable makes a string from the guest safe to print on a terminal:
// control bytes and invalid UTF-8 could otherwise move the cursor, retitle
// the window or worse in the person's terminal.
func Printable(s string) string {
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\ufffd") {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ParseExit decodes KindExit's payload.
func ParseExit(b []byte) (int, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: exit status of %d bytes", ErrFrame, len(b))
	}
	return int(int32(binary.BigEndian.Uint32(b))), nil
}

// Resize encodes a terminal size for KindResize.
func Resize(rows, cols uint16) []byte {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return b[:]
}

// ParseResize decodes KindResize's payload.
func ParseResize(b []byte) (rows, cols uint16, err error) {
	if len(b) != 4 {
		return 0, 0, fmt.Errorf("%w: resize of %d bytes", ErrFrame, len(b))
	}
	return binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), nil
}

// Proc is one of the guest's processes as the agent reads it from the
// guest's /proc. It comes from the guest: Command may hold any bytes, and
// whoever prints it must make it safe for a terminal first.
type Proc struct {
	PID     int    `json:"pid"`
	PPID    int    `json:"ppid"`
	UID     int    `json:"uid"`
	State   string `json:"state"`
	Command string `json:"command"`
}
