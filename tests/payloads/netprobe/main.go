// netprobe tries network actions from inside a container and prints one
// line per attempt, for the network tests:
//
//	netprobe get URL          body of an HTTP GET, or the error (exit 1)
//	netprobe addr IFACE       the interface's IPv4 address and MAC
//	netprobe raw              socket(AF_INET, SOCK_RAW) and socket(AF_PACKET): OK or errno
//	netprobe setaddr IFACE IP SIOCSIFADDR: OK or errno
//	netprobe setmac IFACE MAC SIOCSIFHWADDR: OK or errno
//	netprobe serve PORT N     answers N HTTP requests on PORT with
//	                          "kernel=RELEASE" (the kernel it runs on), then exits
//	netprobe dns NAME udp|tcp resolves NAME's IPv4 addresses through the
//	                          nameservers of /etc/resolv.conf, over the transport
//	netprobe dnsflood N       sends N queries at once to resolv.conf's first
//	                          nameserver over UDP and counts the answers
//	netprobe udpecho PORT     answers one UDP datagram with "echo:" and it
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/tests/payloads/internal/payload"
)

func main() {
	if len(os.Args) < 2 {
		payload.Usage("netprobe get URL | addr IFACE | raw | setaddr IFACE IP | setmac IFACE MAC | serve PORT N | dns NAME udp|tcp | dnsflood N | udpecho PORT")
	}
	switch os.Args[1] {
	case "get":
		c := http.Client{Timeout: 3 * time.Second}
		resp, err := c.Get(os.Args[2])
		if err != nil {
			fmt.Println("ERR", payload.ErrnoName(err))
			os.Exit(1)
		}
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(string(b))
	case "addr":
		ifc, err := net.InterfaceByName(os.Args[2])
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				fmt.Println(ipn.IP, ifc.HardwareAddr)
			}
		}
	case "raw":
		for _, s := range []struct {
			name           string
			family, typ, p int
		}{{"inet-raw", unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP}, {"packet", unix.AF_PACKET, unix.SOCK_RAW, 0x0300}} {
			fd, err := unix.Socket(s.family, s.typ, s.p)
			if err == nil {
				unix.Close(fd)
			}
			fmt.Println(s.name, payload.ErrnoName(err))
		}
	case "setaddr", "setmac":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			fmt.Println(payload.ErrnoName(err))
			os.Exit(1)
		}
		ifr, err := unix.NewIfreq(os.Args[2])
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if os.Args[1] == "setaddr" {
			ip := net.ParseIP(os.Args[3]).To4()
			if err := ifr.SetInet4Addr(ip); err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
		} else {
			mac, err := net.ParseMAC(os.Args[3])
			if err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
			// struct ifreq with a struct sockaddr of family ARPHRD_ETHER.
			var r struct {
				name   [unix.IFNAMSIZ]byte
				family uint16
				data   [22]byte
			}
			copy(r.name[:], os.Args[2])
			r.family = unix.ARPHRD_ETHER
			copy(r.data[:], mac)
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCSIFHWADDR, uintptr(unsafe.Pointer(&r)))
			fmt.Println(payload.ErrnoName(e))
			return
		}
		fmt.Println(payload.ErrnoName(unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr)))
	case "serve":
		// Which kernel answered tells a test whether a connection reached
		// a VM's guest or the host.
		var u unix.Utsname
		_ = unix.Uname(&u)
		release := unix.ByteSliceToString(u.Release[:])
		n, err := strconv.Atoi(os.Args[3])
		if err != nil {
			payload.Usage("serve PORT N: N %q", os.Args[3])
		}
		l, err := net.Listen("tcp", ":"+os.Args[2])
		if err != nil {
			fmt.Println(payload.ErrnoName(err))
			os.Exit(1)
		}
		fmt.Println("listening", l.Addr())
		served := make(chan struct{}, n)
		go func() {
			_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "kernel=%s", release)
				served <- struct{}{}
			}))
		}()
		timeout := time.After(2 * time.Minute)
		for i := 0; i < n; i++ {
			select {
			case <-served:
			case <-timeout:
				fmt.Println("served", i, "of", n, "requests in 2 minutes")
				os.Exit(1)
			}
		}
		time.Sleep(100 * time.Millisecond) // the last answer's bytes
		fmt.Println("served", n)
	case "dns":
		// Go's own resolver: it reads /etc/resolv.conf, and a stream
		// connection from Dial makes it speak DNS over TCP.
		proto := os.Args[3]
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, proto, addr)
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		ips, err := r.LookupIP(ctx, "ip4", os.Args[2])
		if err != nil {
			fmt.Println("dns", proto, "ERR", err)
			os.Exit(1)
		}
		fmt.Println("dns", proto, os.Args[2], ips)
	case "dnsflood":
		dnsFlood(os.Args[2])
	case "udpecho":
		c, err := net.ListenPacket("udp4", ":"+os.Args[2])
		if err != nil {
			fmt.Println(payload.ErrnoName(err))
			os.Exit(1)
		}
		fmt.Println("listening", c.LocalAddr())
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			c.WriteTo(append([]byte("echo:"), buf[:n]...), from)
		}
	default:
		payload.Usage("unknown mode %q", os.Args[1])
	}
}

// dnsFlood sends n queries for flood.invalid to the first nameserver of
// /etc/resolv.conf without waiting, then counts the answers until none
// came for 2 s.
func dnsFlood(arg string) {
	n, _ := strconv.Atoi(arg)
	b, _ := os.ReadFile("/etc/resolv.conf")
	server := ""
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "nameserver" {
			server = f[1]
			break
		}
	}
	c, err := net.Dial("udp", net.JoinHostPort(server, "53"))
	if err != nil {
		fmt.Println("flood ERR", payload.ErrnoName(err))
		os.Exit(1)
	}
	q := []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'f', 'l', 'o', 'o', 'd', 7, 'i', 'n', 'v', 'a', 'l', 'i', 'd', 0, 0, 1, 0, 1}
	for i := range n {
		q[0], q[1] = byte(i>>8), byte(i)
		c.Write(q)
	}
	answered := 0
	buf := make([]byte, 65535)
	for answered < n {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); err != nil {
			break
		}
		answered++
	}
	fmt.Println("flood sent", n, "answered", answered)
}
