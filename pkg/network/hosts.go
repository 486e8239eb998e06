package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Containers on one network find each other by name through their
// /etc/hosts, rewritten on the host as members join and leave, rather than
// through a resolver: nothing listens, nothing runs between containers, and
// a container learns only the names of its own network. The member list
// is one record per container under hosts/NETWORK, each pointing at its
// record.

// Member is one container on a network.
type Member struct {
	Root      string   `json:"root"`
	ID        string   `json:"id"`
	IP        string   `json:"ip"`
	Names     []string `json:"names"`
	Ports     []Port   `json:"ports,omitempty"`
	HostsFile string   `json:"-"`
}

func membersOf(network string) ([]Member, error) {
	dir := filepath.Join(hostsDir, network)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		r, err := readRecord(target)
		if err != nil {
			// A record gone without leaving (removed by hand): forget it.
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		out = append(out, Member{Root: r.Root, ID: r.ID, IP: r.IP, Names: r.Names, Ports: r.Ports, HostsFile: r.HostsFile})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// join adds the container to its network's members and rewrites every
// member's hosts file.
func join(r *Record, hostname string) error {
	if r.IP == "" {
		return nil
	}
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	dir := filepath.Join(hostsDir, r.Network)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	link := filepath.Join(dir, key(r.Root, r.ID))
	_ = os.Remove(link)
	if err := os.Symlink(RecordPath(r.Root, r.ID), link); err != nil {
		return fmt.Errorf("network %q members: %w", r.Network, err)
	}
	return rewriteHosts(r.Network)
}

// leave removes the container from its network's members.
func leave(r *Record) error {
	link := filepath.Join(hostsDir, r.Network, key(r.Root, r.ID))
	if _, err := os.Lstat(link); err != nil {
		return nil
	}
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return rewriteHosts(r.Network)
}

// rewriteHosts writes each member's hosts file in place (the container
// binds the file, not its directory, so a rename would go unseen).
func rewriteHosts(network string) error {
	ms, err := membersOf(network)
	if err != nil {
		return err
	}
	var errs []error
	for _, self := range ms {
		if self.HostsFile == "" {
			continue
		}
		if err := writeExisting(self.HostsFile, hostsFor(self, ms)); err != nil {
			errs = append(errs, fmt.Errorf("hosts of %s: %w", self.ID, err))
		}
	}
	return errors.Join(errs...)
}

// writeExisting rewrites file in place if it still exists. A member being
// removed at the same time (its files go without the members' lock) is
// no error: its hosts file is gone, or goes, with it. A stat before the
// write would leave that window open.
func writeExisting(file, content string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func hostsFor(self Member, ms []Member) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	fmt.Fprintf(&b, "%s\t%s\n", self.IP, strings.Join(self.Names, " "))
	for _, m := range ms {
		if m.ID != self.ID && m.IP != "" {
			fmt.Fprintf(&b, "%s\t%s\n", m.IP, strings.Join(m.Names, " "))
		}
	}
	return b.String()
}

// resolvConf is the host's resolv.conf less the nameservers on its
// loopback (a local stub resolver the container cannot reach, and must
// not: see the loopback guard).
func resolvConf() string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return "# the host has no /etc/resolv.conf\n"
	}
	var out strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			out.WriteString("# " + l + " (the host's loopback, unreachable from the container)\n")
			continue
		}
		if l != "" {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}
