package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Directories the package keeps its host state in. Everything under Run
// lives as long as the machine's uptime, as network namespaces do.
const (
	// DefaultDir holds the named networks a person creates.
	DefaultDir = "/etc/bulwark/networks"
	// DefaultCNIDir holds the CNI config lists `--net cni:NAME` names.
	DefaultCNIDir = "/etc/cni/net.d"
	// Run is the root of the attachments' state.
	Run = "/run/bulwark-net"
)

// PluginPath is where the CNI plugin binaries are looked for: Debian's
// containernetworking-plugins first, then the upstream default.
var PluginPath = []string{"/usr/lib/cni", "/opt/cni/bin"}

// DefaultNetwork is the built-in network `--net bridge` attaches to.
const DefaultNetwork = "bridge"

// BridgePrefix starts the name of every bridge bulwark makes: the
// isolation and loopback rules match it ("bulwark+").
const BridgePrefix = "bulwark"

// Drivers of a named network.
const (
	DriverBridge  = "bridge"
	DriverMacvlan = "macvlan"
	DriverIPvlan  = "ipvlan"
)

// Network is a named network as `network create` records it. The CNI
// config list is made from it (ConfList), never stored, so that a newer
// bulwark changes every network's plugins at once.
type Network struct {
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	Bridge  string `json:"bridge,omitempty"` // bridge driver
	Parent  string `json:"parent,omitempty"` // macvlan, ipvlan
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
}

// Compiled on first use: every container start links this package.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`) })

// builtin is the default network: bulwark0 on 10.89.0.0/24.
var builtin = Network{Name: DefaultNetwork, Driver: DriverBridge, Bridge: BridgePrefix + "0", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1"}

// Store is the named networks under Dir and the CNI config lists under
// CNIDir.
type Store struct {
	Dir, CNIDir string
}

// Default returns the store at its default directories.
func Default() *Store { return &Store{Dir: DefaultDir, CNIDir: DefaultCNIDir} }

func (s *Store) path(name string) string { return filepath.Join(s.Dir, name+".json") }

// Get returns the named network; the default one is built in.
func (s *Store) Get(name string) (*Network, error) {
	if name == DefaultNetwork {
		n := builtin
		return &n, nil
	}
	if !nameRE().MatchString(name) {
		return nil, fmt.Errorf("network %q: %w: a name is letters, digits, '_', '.' and '-', at most 64", name, ErrInvalid)
	}
	b, err := os.ReadFile(s.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("network %q: %w (bulwark network ls lists them; bulwark network create makes one)", name, ErrUnknown)
	}
	if err != nil {
		return nil, err
	}
	n := new(Network)
	if err := json.Unmarshal(b, n); err != nil {
		return nil, &damagedError{name: name, path: s.path(name), err: err}
	}
	return n, nil
}

// damagedError is a network record that cannot be read (cut, or edited by
// hand): network rm removes it.
type damagedError struct {
	name, path string
	err        error
}

func (e *damagedError) Error() string {
	return fmt.Sprintf("network %q: %s: %v (bulwark network rm %s removes it)", e.name, e.path, e.err, e.name)
}

func (e *damagedError) Unwrap() error { return e.err }

// List returns the default network and the named ones, by name.
func (s *Store) List() ([]*Network, error) {
	b := builtin
	out := []*Network{&b}
	ents, err := os.ReadDir(s.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || name == DefaultNetwork {
			continue
		}
		n, err := s.Get(name)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].Name < out[1+j].Name })
	return out, nil
}

// Errors a caller can tell apart.
var (
	ErrUnknown = errors.New("no such network")
	ErrExist   = errors.New("network already exists")
	ErrInvalid = errors.New("invalid network")
	ErrInUse   = errors.New("in use")
)

// Create records a new named network. A bridge network without a subnet
// gets the first free 10.89.N.0/24 and bridge bulwarkN; a macvlan or ipvlan
// one needs its parent and takes the parent's IPv4 subnet unless given.
func (s *Store) Create(n Network) (*Network, error) {
	if !nameRE().MatchString(n.Name) {
		return nil, fmt.Errorf("network %q: %w: a name is letters, digits, '_', '.' and '-', at most 64", n.Name, ErrInvalid)
	}
	if n.Name == DefaultNetwork || n.Name == "none" || n.Name == "host" {
		return nil, fmt.Errorf("network %q: %w: the name is reserved", n.Name, ErrExist)
	}
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.Name == n.Name {
			return nil, fmt.Errorf("network %q: %w", n.Name, ErrExist)
		}
	}
	if n.Driver == "" {
		n.Driver = DriverBridge
	}
	switch n.Driver {
	case DriverBridge:
		if n.Parent != "" {
			return nil, fmt.Errorf("network %q: --parent: %w: only macvlan and ipvlan have a parent", n.Name, ErrInvalid)
		}
		used := map[int]bool{}
		for _, o := range all {
			if k, err := strconv.Atoi(strings.TrimPrefix(o.Bridge, BridgePrefix)); err == nil {
				used[k] = true
			}
		}
		k := 1
		for ; used[k] && k < 255; k++ {
		}
		if k == 255 {
			return nil, fmt.Errorf("network %q: %w: no bridge name left", n.Name, ErrInvalid)
		}
		n.Bridge = fmt.Sprintf("%s%d", BridgePrefix, k)
		if n.Subnet == "" {
			n.Subnet = fmt.Sprintf("10.89.%d.0/24", k)
		}
	case DriverMacvlan, DriverIPvlan:
		if n.Parent == "" {
			return nil, fmt.Errorf("network %q: %w: --driver %s needs --parent IFACE", n.Name, ErrInvalid, n.Driver)
		}
		if n.Subnet == "" {
			sub, err := parentSubnet(n.Parent)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", n.Name, err)
			}
			n.Subnet = sub
		}
	default:
		return nil, fmt.Errorf("network %q: --driver %q: %w: want bridge, macvlan or ipvlan", n.Name, n.Driver, ErrInvalid)
	}
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return nil, fmt.Errorf("network %q: --subnet %q: %w: want an IPv4 CIDR of /30 or larger", n.Name, n.Subnet, ErrInvalid)
	}
	n.Subnet = p.Masked().String()
	for _, o := range all {
		if q, err := netip.ParsePrefix(o.Subnet); err == nil && q.Overlaps(p) && o.Driver == DriverBridge && n.Driver == DriverBridge {
			return nil, fmt.Errorf("network %q: --subnet %s: %w: overlaps network %q (%s)", n.Name, n.Subnet, ErrInvalid, o.Name, o.Subnet)
		}
	}
	if n.Gateway != "" {
		g, err := netip.ParseAddr(n.Gateway)
		if err != nil || !p.Contains(g) {
			return nil, fmt.Errorf("network %q: --gateway %q: %w: want an address in %s", n.Name, n.Gateway, ErrInvalid, n.Subnet)
		}
	} else if n.Driver == DriverBridge {
		n.Gateway = p.Addr().Next().String()
	}
	if _, err := n.ConfList(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(n, "", "\t")
	if err != nil {
		return nil, err
	}
	// Whole or not at all: a create killed between an O_EXCL create and
	// its write left an empty record, which every later network ls and
	// create failed on, and which network rm could not read. The record
	// is written under a temporary name (no .json: List skips it) and
	// linked to its own, which fails if another create got there first.
	tmp, err := os.CreateTemp(s.Dir, "."+n.Name+".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), s.path(n.Name)); errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("network %q: %w", n.Name, ErrExist)
	} else if err != nil {
		return nil, err
	}
	return &n, nil
}

// Remove deletes a named network with no container on it, its bridge, its
// isolation rule and its IPAM directory.
func (s *Store) Remove(name string) error {
	if name == DefaultNetwork {
		return fmt.Errorf("network %q: %w: the default network cannot be removed", name, ErrInvalid)
	}
	n, err := s.Get(name)
	var damaged *damagedError
	if errors.As(err, &damaged) {
		// No container can be on a network whose record nobody can
		// read (a run reads it first), so none made its bridge: the
		// record and what the name leads to are all there is.
		return errors.Join(os.RemoveAll(filepath.Join(ipamDir, name)), os.RemoveAll(filepath.Join(hostsDir, name)), os.Remove(s.path(name)))
	}
	if err != nil {
		return err
	}
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	members, err := membersOf(n.Name)
	if err != nil {
		return err
	}
	if len(members) > 0 {
		ids := make([]string, len(members))
		for i, m := range members {
			ids[i] = m.ID
		}
		return fmt.Errorf("network %q: %w by %s", name, ErrInUse, strings.Join(ids, ", "))
	}
	var errs []error
	if n.Driver == DriverBridge {
		errs = append(errs, removeIsolation(n.Bridge), deleteLink(n.Bridge))
	}
	errs = append(errs, os.RemoveAll(filepath.Join(ipamDir, n.Name)), os.RemoveAll(filepath.Join(hostsDir, n.Name)), os.Remove(s.path(name)))
	return errors.Join(errs...)
}

// List is a CNI config list as pkg/network reads it: its name, its
// plugins' types (and a bridge plugin's bridge), and its bytes as given to
// the plugins. libcni reads it fully only where the plugins run, in
// bulwark-tools (pkg/network/cni).
type List struct {
	CNIVersion string   `json:"cniVersion"`
	Name       string   `json:"name"`
	Plugins    []Plugin `json:"plugins"`
	Bytes      []byte   `json:"-"`
}

// Plugin is one entry of a List.
type Plugin struct {
	Type   string `json:"type"`
	Bridge string `json:"bridge,omitempty"`
}

// parseList reads a config list, refusing one without a name or plugins.
func parseList(b []byte) (*List, error) {
	l := &List{Bytes: b}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if l.Name == "" || len(l.Plugins) == 0 {
		return nil, fmt.Errorf("%w: a config list needs a name and plugins", ErrInvalid)
	}
	for i, p := range l.Plugins {
		if p.Type == "" || strings.ContainsAny(p.Type, "/\\") {
			return nil, fmt.Errorf("%w: plugins[%d].type %q", ErrInvalid, i, p.Type)
		}
	}
	return l, nil
}

// ConfList is the CNI config list the network stands for.
func (n *Network) ConfList() (*List, error) {
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{{"subnet": n.Subnet}}},
		"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
		"dataDir": ipamDir,
	}
	if n.Gateway != "" {
		ipam["ranges"].([][]map[string]string)[0][0]["gateway"] = n.Gateway
	}
	var plugins []map[string]any
	switch n.Driver {
	case DriverBridge:
		plugins = []map[string]any{{
			"type": "bridge", "bridge": n.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true, "ipam": ipam,
		}, {
			"type": "portmap", "capabilities": map[string]bool{"portMappings": true},
		}}
	case DriverMacvlan:
		plugins = []map[string]any{{"type": "macvlan", "master": n.Parent, "mode": "bridge", "ipam": ipam}}
	case DriverIPvlan:
		plugins = []map[string]any{{"type": "ipvlan", "master": n.Parent, "mode": "l2", "ipam": ipam}}
	default:
		return nil, fmt.Errorf("network %q: driver %q: %w", n.Name, n.Driver, ErrInvalid)
	}
	return confList(n.Name, plugins)
}

func confList(name string, plugins []map[string]any) (*List, error) {
	b, err := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": plugins})
	if err != nil {
		return nil, err
	}
	return parseList(b)
}

// parentSubnet is the first IPv4 subnet on the interface, for a macvlan or
// ipvlan network given none: its containers then share the parent's LAN.
func parentSubnet(parent string) (string, error) {
	ifc, err := net.InterfaceByName(parent)
	if err != nil {
		return "", fmt.Errorf("parent interface %q: %w: %w", parent, ErrInvalid, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", fmt.Errorf("parent interface %q: %w", parent, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			p, _ := netip.ParsePrefix(ipn.String())
			return p.Masked().String(), nil
		}
	}
	return "", fmt.Errorf("parent interface %q: %w: it has no IPv4 address to take a subnet from; create a network with --subnet", parent, ErrInvalid)
}

// Mode is what `--net` asks for, resolved to the CNI config list to attach
// (none for none, host and container:NAME).
type Mode struct {
	Flag string // as given
	Kind string // none, host, container, cni (every CNI attachment)
	// Container is the container whose network namespace container:NAME
	// joins.
	Container string
	// Name is the CNI network's name; List its config list; Ports tells
	// whether the list has portmap (for -p).
	Name  string
	List  *List
	Ports bool
	// Dedicated is the interface dedicated:IFACE moves in.
	Dedicated string
}

// Resolve reads a --net value: none, host, bridge, a named network,
// macvlan:IFACE, ipvlan:IFACE, dedicated:IFACE, container:NAME or cni:NAME.
// Everything it can check without changing the host is checked: the
// network exists, the parent interface exists, the config list parses and
// each plugin binary is found and speaks its CNI version.
func (s *Store) Resolve(ctx context.Context, flag string) (*Mode, error) {
	m := &Mode{Flag: flag}
	kind, arg, hasArg := strings.Cut(flag, ":")
	switch {
	case flag == "" || flag == "none":
		m.Kind = "none"
		return m, nil
	case flag == "host":
		m.Kind = "host"
		return m, nil
	case !hasArg:
		n, err := s.Get(flag)
		if err != nil {
			return nil, err
		}
		if n.Driver != DriverBridge {
			if _, err := net.InterfaceByName(n.Parent); err != nil {
				return nil, fmt.Errorf("network %q: parent interface %q: %w", n.Name, n.Parent, err)
			}
		}
		if m.List, err = n.ConfList(); err != nil {
			return nil, err
		}
	case kind == "container":
		if arg == "" {
			return nil, fmt.Errorf("want container:NAME: %w", ErrInvalid)
		}
		m.Kind, m.Container = "container", arg
		return m, nil
	case kind == DriverMacvlan || kind == DriverIPvlan:
		sub, err := parentSubnet(arg)
		if err != nil {
			return nil, err
		}
		n := Network{Name: kind + "-" + arg, Driver: kind, Parent: arg, Subnet: sub}
		if m.List, err = n.ConfList(); err != nil {
			return nil, err
		}
	case kind == "dedicated":
		if _, err := net.InterfaceByName(arg); err != nil {
			return nil, fmt.Errorf("interface %q: %w: %w", arg, ErrInvalid, err)
		}
		var err error
		m.Dedicated = arg
		if m.List, err = confList("dedicated-"+arg, []map[string]any{{"type": "host-device", "device": arg}}); err != nil {
			return nil, err
		}
	case kind == "cni":
		if !nameRE().MatchString(arg) {
			return nil, fmt.Errorf("cni:%q: %w: want the name of a config list in %s", arg, ErrInvalid, s.CNIDir)
		}
		l, err := loadConfList(s.CNIDir, arg)
		if err != nil {
			return nil, fmt.Errorf("cni:%s: %w", arg, err)
		}
		m.List = l
	default:
		return nil, fmt.Errorf("%w: want none, host, bridge, a network's name, macvlan:IFACE, ipvlan:IFACE, dedicated:IFACE, container:NAME or cni:NAME", ErrInvalid)
	}
	m.Kind, m.Name = "cni", m.List.Name
	for _, p := range m.List.Plugins {
		if p.Type == "portmap" {
			m.Ports = true
		}
	}
	// That each plugin speaks the list's CNI version is checked where
	// they run (cni.Add), still before the container exists.
	for _, p := range m.List.Plugins {
		if findPlugin(p.Type) == "" {
			return nil, fmt.Errorf("network %q: failed to find plugin %q in path %s", m.Name, p.Type, strings.Join(PluginPath, ":"))
		}
	}
	return m, nil
}

// Info is a network and the containers on it (network inspect).
type Info struct {
	*Network
	CNI     json.RawMessage `json:"cni"`
	Members []Member        `json:"containers"`
}

// Inspect returns the named network, its CNI config list and its members.
func (s *Store) Inspect(name string) (*Info, error) {
	n, err := s.Get(name)
	if err != nil {
		return nil, err
	}
	l, err := n.ConfList()
	if err != nil {
		return nil, err
	}
	ms, err := membersOf(n.Name)
	if err != nil {
		return nil, err
	}
	return &Info{Network: n, CNI: l.Bytes, Members: ms}, nil
}

// loadConfList finds the config list named name among the .conflist files
// of dir. A malformed file does not hide the others (libcni's LoadConfList
// fails on the first); it is named when no file has the list.
func loadConfList(dir, name string) (*List, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("config lists in %s: %w", dir, err)
	}
	var bad []error
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conflist") {
			continue
		}
		f := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(f)
		var l *List
		if err == nil {
			l, err = parseList(b)
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", f, err))
			continue
		}
		if l.Name == name {
			return l, nil
		}
	}
	err = fmt.Errorf("no config list named %q in %s: %w", name, dir, ErrUnknown)
	return nil, errors.Join(append([]error{err}, bad...)...)
}

// findPlugin is the plugin binary's path in PluginPath, "" if none.
func findPlugin(typ string) string {
	for _, d := range PluginPath {
		p := filepath.Join(d, typ)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
