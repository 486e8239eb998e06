// Package vmdns carries name resolution across a VM container's wall when
// the container's resolv.conf names a nameserver on its loopback: Docker's
// embedded server for user-defined networks (127.0.0.11, behind an
// iptables DNAT rule in the container's network namespace), a host's
// stub resolver (127.0.0.53) under --network host. In the guest, that
// address is the guest's own loopback, where nothing answers: the
// container's interfaces are carried into the guest wholesale (pkg/vmnet),
// its loopback and its netfilter rules are not.
//
// So the guest agent listens on each such address, port 53, UDP and TCP
// (Stub), and sends every query over the VM's port (internal/vmproto,
// KindDNS) to the container's init on the host, which lives in the
// container's network namespace and asks the same address from there
// (Forwarder): Docker's DNAT then applies to it as it does to a runc
// container's own query, and the answer goes back the same way.
//
// Threat: the guest is the attacker's side. The host side never talks to
// an address the guest names: a query names a nameserver by its index in
// the list the host read from the container's resolv.conf before the
// guest booted, and only loopback nameservers are on it, port 53 only, so
// the guest reaches nothing a runc container in the same namespace could
// not. A message is bounded (65535 bytes, checked before use), queries in
// flight are bounded (MaxInFlight, the rest dropped as a busy resolver
// drops them), each query has a deadline, and a guest that stops reading
// its port holds at most MaxInFlight goroutines, not more: a query flood
// costs the host a fixed amount of memory.
//
// When not to use it: a nameserver the guest reaches over its own NIC (a
// bridge's gateway, podman's aardvark-dns, the host's upstream servers)
// needs none of this, and is left to the guest.
package vmdns

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// Port is DNS's port, the only one either side uses.
const Port = 53

// MaxInFlight bounds the queries each side has in flight; more are
// dropped, and the client asks again after its timeout.
const MaxInFlight = 64

// maxResolvConf bounds what is read of a resolv.conf: the file is the
// image's or the engine's, and only its first nameservers count.
const maxResolvConf = 64 << 10

// LoopbackNameservers returns the nameservers of a resolv.conf's content
// that are loopback addresses, among the first vmproto.MaxNameservers
// nameserver lines (a resolver ignores the rest), in their order.
func LoopbackNameservers(resolvConf []byte) []netip.Addr {
	var out []netip.Addr
	seen := 0
	for _, l := range strings.Split(string(resolvConf), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if seen++; seen > vmproto.MaxNameservers {
			break
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || !a.IsLoopback() || a.Zone() != "" {
			continue
		}
		a = a.Unmap()
		dup := false
		for _, b := range out {
			dup = dup || b == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// ReadNameservers reads rootfs's /etc/resolv.conf, resolved inside the
// rootfs as the guest will see it, and returns its loopback nameservers;
// none when the file does not exist.
func ReadNameservers(rootfs string) ([]netip.Addr, error) {
	p, err := securejoin.SecureJoin(rootfs, "/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("the container's /etc/resolv.conf: %w", err)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the container's /etc/resolv.conf: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, nil // not a file a resolver reads either
	}
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf))
	if err != nil {
		return nil, fmt.Errorf("the container's /etc/resolv.conf: %w", err)
	}
	return LoopbackNameservers(b), nil
}
