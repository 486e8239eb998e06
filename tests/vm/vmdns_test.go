package vm

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/netns"
)

// dnsName reads the question's name of a DNS message ("probe.bulwark.test").
func dnsName(q []byte) string {
	var labels []string
	for i := 12; i < len(q) && q[i] != 0; {
		n := int(q[i])
		if i+1+n > len(q) {
			return ""
		}
		labels = append(labels, string(q[i+1:i+1+n]))
		i += 1 + n
	}
	return strings.Join(labels, ".")
}

// dnsAnswer answers q: probe.bulwark.test has the A record 10.1.2.3,
// every other name is NXDOMAIN.
func dnsAnswer(q []byte) []byte {
	end := 12
	for end < len(q) && q[end] != 0 {
		end += 1 + int(q[end])
	}
	end += 5 // the root label, type, class
	if len(q) < 12 || end > len(q) {
		return nil
	}
	r := append([]byte(nil), q[:end]...)
	r[2], r[3] = 0x81|q[2]&0x01, 0x80
	r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
	if dnsName(q) == "probe.bulwark.test" && q[end-4] == 0 && q[end-3] == 1 {
		r[7] = 1
		return append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3)
	}
	r[3] |= 3 // NXDOMAIN
	return r
}

// loopbackNameserver serves dnsAnswer on 127.0.0.11:53, UDP and TCP, in
// the network namespace at ns, as Docker's embedded server does in a
// container's; it counts the queries for probe.bulwark.test by transport.
type loopbackNameserver struct {
	mu       sync.Mutex
	udp, tcp int
	flood    int
	pc       net.PacketConn
	l        net.Listener
}

func startLoopbackNameserver(t *testing.T, ns string) *loopbackNameserver {
	t.Helper()
	s := &loopbackNameserver{}
	if err := netns.DoPath(ns, func() error {
		var err error
		if s.pc, err = net.ListenPacket("udp", "127.0.0.11:53"); err != nil {
			return err
		}
		s.l, err = net.Listen("tcp", "127.0.0.11:53")
		return err
	}); err != nil {
		t.Fatalf("nameserver in %s: %v", ns, err)
	}
	t.Cleanup(func() { s.pc.Close(); s.l.Close() })
	count := func(q []byte, tcp bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch name := dnsName(q); {
		case name == "probe.bulwark.test" && tcp:
			s.tcp++
		case name == "probe.bulwark.test":
			s.udp++
		case name == "flood.invalid":
			s.flood++
		}
	}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := s.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			count(buf[:n], false)
			if a := dnsAnswer(buf[:n]); a != nil {
				s.pc.WriteTo(a, from)
			}
		}
	}()
	go func() {
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				for {
					var h [2]byte
					if _, err := io.ReadFull(c, h[:]); err != nil {
						return
					}
					q := make([]byte, binary.BigEndian.Uint16(h[:]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					count(q, true)
					a := dnsAnswer(q)
					c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
				}
			}()
		}
	}()
	return s
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	kb, _ := strconv.Atoi(strings.Fields(procLine(t, pid, "status", "VmHWM:") + " 0")[0])
	return kb
}

// TestOCIVMLoopbackNameserverAnswersInTheGuest: a VM container whose
// resolv.conf names a nameserver on the container's loopback (as Docker's
// 127.0.0.11 on a user-defined network) resolves through it from the
// guest, over UDP and over TCP, although the guest's loopback is its own:
// the agent takes the queries on 127.0.0.11:53 in the guest and the
// container's init asks the nameserver in the container's network
// namespace. A flood of queries from the guest leaves the init's memory
// flat and the resolver working; delete leaves nothing.
func TestOCIVMLoopbackNameserverAnswersInTheGuest(t *testing.T) {
	needVM(t)
	name := "bwdns" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nsPath := "/run/netns/" + name
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	srv := startLoopbackNameserver(t, nsPath)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.11\noptions ndots:0 attempts:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	bundle := vmBundle(t, func(s *specs.Spec) {
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = nsPath
			}
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: resolv, Options: []string{"rbind", "ro"}})
		s.Process.Args = []string{"sh", "-c", `netprobe dns probe.bulwark.test udp; echo ready; read x; netprobe dnsflood 5000; netprobe dns probe.bulwark.test udp; netprobe dns probe.bulwark.test tcp; netprobe dns nothing.bulwark.test udp; echo done; sleep 600`}
	})
	const id = "vm-dns"
	lines := o.createAttachedStdin(id, bundle)
	o.ok("start", id)
	waitLine(t, lines.out, "dns udp probe.bulwark.test [10.1.2.3]", 240*time.Second)
	waitLine(t, lines.out, "ready", 30*time.Second)
	st := o.state(id)
	before := vmHWM(t, st.Pid)
	lines.in.Write([]byte("go\n"))
	waitLine(t, lines.out, "flood sent 5000", 120*time.Second)
	waitLine(t, lines.out, "dns udp probe.bulwark.test [10.1.2.3]", 60*time.Second)
	waitLine(t, lines.out, "dns tcp probe.bulwark.test [10.1.2.3]", 60*time.Second)
	waitLine(t, lines.out, "dns udp ERR", 60*time.Second) // NXDOMAIN comes back as such
	waitLine(t, lines.out, "done", 60*time.Second)
	after := vmHWM(t, st.Pid)
	srv.mu.Lock()
	t.Logf("nameserver saw probe over UDP %d, over TCP %d, flood %d of 5000; the init's peak RSS %d KiB before the flood, %d after", srv.udp, srv.tcp, srv.flood, before, after)
	if srv.udp < 2 || srv.tcp < 1 {
		t.Errorf("the nameserver saw %d UDP and %d TCP queries for probe.bulwark.test, want 2 and 1: the transport must carry through", srv.udp, srv.tcp)
	}
	if srv.flood == 0 || srv.flood > 5000 {
		t.Errorf("the nameserver saw %d of the flood's queries", srv.flood)
	}
	srv.mu.Unlock()
	if after-before > 32<<10 {
		t.Errorf("the init's peak RSS grew from %d to %d KiB with a query flood", before, after)
	}
	qemu := qemuOf(t, o, id)
	o.ok("kill", id, "KILL")
	o.waitStatus(id, specs.StateStopped, 60*time.Second)
	o.ok("delete", id)
	requireGone(t, o.root, id, []int{st.Pid, qemu}, "")
}

// attached is a container's stdin and stdout lines.
type attached struct {
	in  io.WriteCloser
	out <-chan string
}

// createAttachedStdin is createAttached with the init's stdin on a pipe
// the test writes.
func (o ociRuntime) createAttachedStdin(id, bundle string) attached {
	o.t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		o.t.Fatal(err)
	}
	ir, iw, err := os.Pipe()
	if err != nil {
		o.t.Fatal(err)
	}
	errf, err := os.CreateTemp(o.t.TempDir(), "create-stderr")
	if err != nil {
		o.t.Fatal(err)
	}
	defer errf.Close()
	cmd := exec.Command(o.bin, "--root", o.root, "create", "--bundle", bundle, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ir, pw, errf
	err = cmd.Run()
	pw.Close()
	ir.Close()
	if err != nil {
		pr.Close()
		iw.Close()
		b, _ := os.ReadFile(errf.Name())
		o.t.Fatalf("create: %v: %s", err, b)
	}
	o.t.Cleanup(func() { iw.Close(); o.do("", "delete", "-f", id) })
	lines := make(chan string, 64)
	go func() {
		defer pr.Close()
		buf := make([]byte, 0, 4096)
		one := make([]byte, 4096)
		for {
			n, err := pr.Read(one)
			buf = append(buf, one[:n]...)
			for {
				i := strings.IndexByte(string(buf), '\n')
				if i < 0 {
					break
				}
				lines <- string(buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	return attached{in: iw, out: lines}
}
