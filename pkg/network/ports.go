package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// Port is one -p [IP:]HOST:CONTAINER[/tcp|udp], in the portmap plugin's
// runtimeConfig form.
type Port struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (p Port) String() string {
	s := fmt.Sprintf("%d:%d/%s", p.HostPort, p.ContainerPort, p.Protocol)
	if p.HostIP != "" {
		s = p.HostIP + ":" + s
	}
	return s
}

// ParsePort reads -p [IP:]HOST:CONTAINER[/tcp|udp].
func ParsePort(s string) (Port, error) {
	var p Port
	rest, proto, hasProto := strings.Cut(s, "/")
	p.Protocol = "tcp"
	if hasProto {
		if proto != "tcp" && proto != "udp" {
			return p, fmt.Errorf("protocol %q: want tcp or udp", proto)
		}
		p.Protocol = proto
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return p, fmt.Errorf("want [IP:]HOST:CONTAINER[/tcp|udp]")
	}
	host, ctr := rest[:i], rest[i+1:]
	if j := strings.LastIndex(host, ":"); j >= 0 {
		ip := strings.Trim(host[:j], "[]")
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() {
			return p, fmt.Errorf("host address %q: want an IPv4 address", ip)
		}
		p.HostIP, host = a.String(), host[j+1:]
	}
	var err error
	if p.HostPort, err = portNumber(host); err != nil {
		return p, fmt.Errorf("host port: %w", err)
	}
	if p.ContainerPort, err = portNumber(ctr); err != nil {
		return p, fmt.Errorf("container port: %w", err)
	}
	return p, nil
}

func portNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q: want a number from 1 to 65535", s)
	}
	return n, nil
}

// free tells whether the host could bind p itself: portmap's DNAT takes
// the port without binding it, so a host service on it would silently lose
// its connections to the container.
func (p Port) free() error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	if p.HostIP == "" {
		addr = ":" + strconv.Itoa(p.HostPort)
	}
	if p.Protocol == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// overlaps tells whether two mappings claim the same host port.
func (p Port) overlaps(q Port) bool {
	return p.HostPort == q.HostPort && p.Protocol == q.Protocol &&
		(p.HostIP == "" || q.HostIP == "" || p.HostIP == q.HostIP)
}

// CheckHostPorts refuses a host port given twice or that no process of
// ours could bind now (another process holds it, or it is below the
// unprivileged port start): for relays that bind on the host themselves
// (pasta, slirp4netns), so the person gets the reason before the container
// exists rather than the relay's.
func CheckHostPorts(ps []Port) error {
	for i, p := range ps {
		for _, q := range ps[:i] {
			if p.overlaps(q) {
				return fmt.Errorf("-p %s: host port %d/%s given twice", p, p.HostPort, p.Protocol)
			}
		}
		if err := p.free(); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("-p %s: host port %d/%s is in use on the host: %w", p, p.HostPort, p.Protocol, err)
			}
			return fmt.Errorf("-p %s: host port %d/%s cannot be bound: %w", p, p.HostPort, p.Protocol, err)
		}
	}
	return nil
}
