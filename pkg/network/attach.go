package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/internal/toolsproto"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/netns"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

var (
	recordDir = filepath.Join(Run, "attach")
	netnsDir  = filepath.Join(Run, "netns")
	ipamDir   = filepath.Join(Run, "ipam")
	cacheDir  = filepath.Join(Run, "cache")
	hostsDir  = filepath.Join(Run, "hosts")
	lockFile  = filepath.Join(Run, "lock")
)

// ifName is the container's interface.
const ifName = "eth0"

// key names a container's attachment files: containers of two --root
// directories may share an id.
func key(root, id string) string {
	h := sha256.Sum256([]byte(root + "\x00" + id))
	return hex.EncodeToString(h[:12])
}

// NetnsPath is where the network namespace of container id under root is
// bound; the spec joins it.
func NetnsPath(root, id string) string { return filepath.Join(netnsDir, key(root, id)) }

// RecordPath is the attachment record of container id under root.
func RecordPath(root, id string) string { return filepath.Join(recordDir, key(root, id)+".json") }

// Record is everything Detach needs, written before the first change to
// the host and completed as the attachment goes on.
type Record struct {
	Root  string `json:"root"`
	ID    string `json:"id"`
	Netns string `json:"netns"`
	// Pid and PidStart are the attaching process: while it lives, its
	// record is not garbage.
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pidStart"`
	// Network is the CNI name, List the config list as attached.
	Network string          `json:"network"`
	List    json.RawMessage `json:"list"`
	Ports   []Port          `json:"ports,omitempty"`
	IP      string          `json:"ip,omitempty"`
	Names   []string        `json:"names,omitempty"`
	// HostsFile is the container's /etc/hosts on the host, rewritten as
	// containers join and leave its network.
	HostsFile string `json:"hostsFile,omitempty"`
}

func (r *Record) containerID() string { return "bulwark-" + key(r.Root, r.ID) }

// Call is one ADD or DEL of the record's list, as pkg/network/cni reads it.
type Call struct {
	List        json.RawMessage `json:"list"`
	ContainerID string          `json:"containerID"`
	Netns       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Ports       []Port          `json:"ports,omitempty"`
	PluginPath  []string        `json:"pluginPath"`
	CacheDir    string          `json:"cacheDir"`
}

func (r *Record) call() Call {
	return Call{List: r.List, ContainerID: r.containerID(), Netns: r.Netns, IfName: ifName, Ports: r.Ports, PluginPath: PluginPath, CacheDir: cacheDir}
}

// RunPlugins runs a Call's ADD (del false) or DEL and returns ADD's IPv4
// address. The bulwark binary runs them in bulwark-tools, where libcni is
// linked (pkg/network/cni); a program that links libcni anyway may set
// its own.
var RunPlugins = func(ctx context.Context, c Call, del bool) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	op := toolsproto.OpCNIAdd
	if del {
		op = toolsproto.OpCNIDel
	}
	var res struct {
		IP string `json:"ip"`
	}
	err = toolsproto.Call(ctx, toolsproto.Request{Op: op, Arg: string(b)}, nil, nil, &res)
	return res.IP, err
}

func (r *Record) save(path string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := new(Record)
	if err := json.Unmarshal(b, r); err != nil {
		return nil, &cutRecordError{path: path, err: err}
	}
	return r, nil
}

// cutRecordError is a record that cannot be read (written whole by save,
// so a hand's edit or a bad disk).
type cutRecordError struct {
	path string
	err  error
}

func (e *cutRecordError) Error() string { return fmt.Sprintf("network record %s: %v", e.path, e.err) }
func (e *cutRecordError) Unwrap() error { return e.err }

// detachCut undoes an attachment whose record cannot be read from what its
// name (the attachment's key) leads to: the plugins' own cache of the ADD
// (the config list, the namespace and the ports DEL needs), the hosts
// entries and the network namespace. It failed on the record before, and
// the container's veth, lease and rules stayed for good (gc cannot read
// the record either). The record goes in any case: there is nothing more
// to learn from it. What could not be undone is named.
func detachCut(ctx context.Context, path string, cut error) error {
	k := strings.TrimSuffix(filepath.Base(path), ".json")
	var errs []error
	cached, _ := filepath.Glob(filepath.Join(cacheDir, "results", "*-bulwark-"+k+"-"+ifName))
	for _, c := range cached {
		call, err := callFromCache(c)
		if err == nil {
			_, err = RunPlugins(ctx, call, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: the plugins' DEL from their cache %s: %w", cut, c, err))
		}
	}
	if len(cached) == 0 {
		// No ADD finished: a lease or rules of one cut short are not
		// known (gc's sweep of the network's plugins may find them).
		errs = append(errs, fmt.Errorf("%w: the plugins hold no cache of its ADD: a lease or rules of an ADD cut short may be left", cut))
	}
	links, _ := filepath.Glob(filepath.Join(hostsDir, "*", k))
	for _, l := range links {
		unlock, err := lock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else if err := rewriteHosts(filepath.Base(filepath.Dir(l))); err != nil {
			errs = append(errs, err)
		}
		unlock()
	}
	ns := filepath.Join(netnsDir, k)
	if err := unix.Unmount(ns, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("network namespace %s: %w", ns, err))
	}
	if err := os.Remove(ns); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// callFromCache is the DEL of the ADD libcni cached at file (its
// cniCacheV1 record: the config list, container id, namespace, interface
// and port mappings as given).
func callFromCache(file string) (Call, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Call{}, err
	}
	var c struct {
		ContainerID    string `json:"containerId"`
		Config         []byte `json:"config"`
		IfName         string `json:"ifName"`
		Netns          string `json:"netns"`
		CapabilityArgs struct {
			PortMappings []Port `json:"portMappings"`
		} `json:"capabilityArgs"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Call{}, err
	}
	if len(c.Config) == 0 || c.ContainerID == "" || c.IfName == "" {
		return Call{}, errors.New("no config list, container id or interface in it")
	}
	return Call{List: c.Config, ContainerID: c.ContainerID, Netns: c.Netns, IfName: c.IfName, Ports: c.CapabilityArgs.PortMappings, PluginPath: PluginPath, CacheDir: cacheDir}, nil
}

// lock serialises what containers share: published ports, hosts entries
// and the bridges' rules.
func lock() (func(), error) {
	if err := os.MkdirAll(Run, 0o700); err != nil {
		return nil, err
	}
	fd, err := unix.Open(lockFile, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("network lock: %w", err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("network lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// Request is one container's attachment.
type Request struct {
	Root, ID string
	Mode     *Mode
	Ports    []Port
	// Hostname and ID are the names other containers on the network find
	// it by.
	Hostname string
	// HostsFile and ResolvFile are the container's /etc/hosts and
	// /etc/resolv.conf on the host, rewritten here ("" if the person
	// mounts their own).
	HostsFile, ResolvFile string
}

// Attach makes the container's network namespace at NetnsPath and attaches
// it. The caller owns RecordPath (container.OwnedNetwork) before calling:
// on an error, and after a SIGKILL at any point, Detach of that record
// undoes what was done.
func Attach(ctx context.Context, req *Request) (*Record, error) {
	if len(req.Ports) > 0 && !req.Mode.Ports {
		return nil, fmt.Errorf("-p: network %q has no portmap plugin; publish ports on bridge or a bridge network", req.Mode.Name)
	}
	for _, d := range []string{recordDir, netnsDir, cacheDir, hostsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	listBytes := req.Mode.List.Bytes
	rec := &Record{
		Root: req.Root, ID: req.ID, Netns: NetnsPath(req.Root, req.ID),
		Pid: os.Getpid(), PidStart: startTime(os.Getpid()),
		Network: req.Mode.Name, List: listBytes, Ports: req.Ports, HostsFile: req.HostsFile,
		Names: names(req.ID, req.Hostname),
	}
	path := RecordPath(req.Root, req.ID)
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	if err := checkPorts(req.Ports); err != nil {
		unlock()
		return nil, err
	}
	err = rec.save(path)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("network record: %w", err)
	}
	if err := makeNetns(rec.Netns); err != nil {
		return nil, err
	}
	if err := bridgeRules(req.Mode.List); err != nil {
		return nil, err
	}
	ip, err := RunPlugins(ctx, rec.call(), false)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", req.Mode.Name, err)
	}
	rec.IP = ip
	if err := rec.save(path); err != nil {
		return nil, err
	}
	if req.ResolvFile != "" {
		if err := os.WriteFile(req.ResolvFile, []byte(resolvConf()), 0o644); err != nil {
			return nil, fmt.Errorf("container /etc/resolv.conf: %w", err)
		}
	}
	if err := join(rec, req.Hostname); err != nil {
		return nil, err
	}
	return rec, nil
}

func names(id, hostname string) []string {
	if hostname == "" || hostname == id {
		return []string{id}
	}
	return []string{hostname, id}
}

// bridgeRules writes the isolation and loopback rules for every bulwark
// bridge in the list before its first container joins.
func bridgeRules(l *List) error {
	for _, c := range l.Plugins {
		if c.Type != "bridge" || !strings.HasPrefix(c.Bridge, BridgePrefix) {
			continue
		}
		unlock, err := lock()
		if err != nil {
			return err
		}
		err = ensureBridgeRules(c.Bridge)
		unlock()
		if err != nil {
			return fmt.Errorf("network %q: %w", l.Name, err)
		}
	}
	return nil
}

// checkPorts refuses host ports another container publishes or a host
// process holds. Called under the lock.
func checkPorts(ps []Port) error {
	if len(ps) == 0 {
		return nil
	}
	recs, _ := records()
	for i, p := range ps {
		for _, q := range ps[:i] {
			if p.overlaps(q) {
				return fmt.Errorf("-p %s: host port %d/%s given twice", p, p.HostPort, p.Protocol)
			}
		}
		for _, r := range recs {
			for _, q := range r.Ports {
				if p.overlaps(q) {
					return fmt.Errorf("-p %s: host port %d/%s is already published by container %s: %w", p, p.HostPort, p.Protocol, r.ID, ErrInUse)
				}
			}
		}
		if err := p.free(); err != nil {
			return fmt.Errorf("-p %s: host port %d/%s is in use on the host: %w", p, p.HostPort, p.Protocol, err)
		}
	}
	return nil
}

// records reads every attachment record.
func records() (map[string]*Record, error) {
	ents, err := os.ReadDir(recordDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	out := map[string]*Record{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(recordDir, e.Name())
		if r, err := readRecord(p); err == nil {
			out[p] = r
		}
	}
	return out, nil
}

// makeNetns creates a network namespace with lo up and binds it at path, so
// that it outlives every process in it until Detach.
func makeNetns(path string) error {
	wait := netns.New()
	f, err := wait()
	if err != nil {
		return err
	}
	defer f.Close()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("network namespace: binding it at %s: %w", path, err)
	}
	// Container root may bind low ports in its own namespace (see
	// policy.UnprivilegedPortStart): the init cannot write it there, the
	// namespace being the host's user namespace's.
	return netns.Do(f, func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(policy.UnprivilegedPortStart, ".", "/"), []byte("0"), 0o644)
	})
}

// Detach undoes the attachment recorded at path: CNI DEL (veth, IPAM
// lease, portmap and masquerade rules), the hosts entries, the network
// namespace and the record. Missing pieces are not errors; if DEL fails
// the record stays, so that gc can try again.
func Detach(ctx context.Context, path string) error {
	// A save killed between its write and its rename leaves the next
	// version of the record under its temporary name, never read: the
	// record at path (if any) is what stands.
	if err := os.Remove(path + ".tmp"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	rec, err := readRecord(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var cut *cutRecordError
	if errors.As(err, &cut) {
		return detachCut(ctx, path, err)
	}
	if err != nil {
		return err
	}
	var errs []error
	if len(rec.List) > 0 {
		_, err := RunPlugins(ctx, rec.call(), true)
		if tool, chain, ok := missingMasqChain(err); ok {
			// The bridge plugin's DEL after an ADD killed before it made
			// its masquerade chain: iptables-nft answers the rule's
			// removal with "Chain ... does not exist" (status 2), which
			// the plugin does not take for "already gone" as it takes
			// iptables-legacy's "Bad rule", so DEL could never succeed
			// and the attachment stayed. The failed DEL had released the
			// lease and removed the veth before it; with an empty chain
			// there, DEL runs again to its end (the veth gone, the
			// plugin skips its masquerade), and the chain goes after it.
			if path, lerr := exec.LookPath(tool); lerr == nil && exec.CommandContext(ctx, path, "-t", "nat", "-N", chain, "--wait").Run() == nil {
				_, err = RunPlugins(ctx, rec.call(), true)
				_ = exec.CommandContext(ctx, path, "-t", "nat", "-X", chain, "--wait").Run()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("network %q of container %s: %w", rec.Network, rec.ID, err))
		}
	}
	if err := leave(rec); err != nil {
		errs = append(errs, err)
	}
	if err := unix.Unmount(rec.Netns, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("network namespace %s: %w", rec.Netns, err))
	}
	if err := os.Remove(rec.Netns); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// masqRemoval is the failure missingMasqChain looks for: a plugin's
// removal of its masquerade jump from nat POSTROUTING, refused because the
// chain it jumps to does not exist. Compiled on first use: a
// package-level regexp would be compiled in every process of every
// container start.
var masqRemoval = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`running \[(?:/\S*/)?(iptables|ip6tables) -t nat -D POSTROUTING [^\]]*-j (CNI-[0-9a-f]{8,64}) [^\]]*\]: exit status 2: [^\n]*Chain '(CNI-[0-9a-f]{8,64})' does not exist`)
})

// missingMasqChain tells which tool and chain such a failure names.
func missingMasqChain(err error) (tool, chain string, ok bool) {
	if err == nil {
		return "", "", false
	}
	m := masqRemoval().FindStringSubmatch(err.Error())
	if m == nil || m[2] != m[3] {
		return "", "", false
	}
	return m[1], m[2], true
}

// Releasers is what container.Runtime needs to undo an attachment.
func Releasers() map[container.OwnedKind]container.Releaser {
	return map[container.OwnedKind]container.Releaser{
		container.OwnedNetwork: func(o container.Owned, _ string) error {
			if !strings.HasPrefix(o.Path, recordDir+"/") {
				return fmt.Errorf("owned network %q: not a record under %s", o.Path, recordDir)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return Detach(ctx, o.Path)
		},
	}
}

// Collect detaches the attachments no container owns and no live process
// is making (runs killed before their container existed); with id set,
// only that container's under root. It returns what it detached.
func Collect(ctx context.Context, root, id string) ([]string, error) {
	recs, err := records()
	if err != nil {
		return nil, err
	}
	var done []string
	var errs []error
	for path, r := range recs {
		if id != "" && (r.Root != root || r.ID != id) {
			continue
		}
		if owned(r, path) || (r.Pid > 0 && startTime(r.Pid) == r.PidStart && r.PidStart != 0) {
			continue
		}
		if err := Detach(ctx, path); err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, r.ID)
	}
	return done, errors.Join(errs...)
}

// owned tells whether the container the record names exists and owns it.
func owned(r *Record, path string) bool {
	st, err := (&container.Runtime{Root: r.Root}).Load(r.ID)
	if err != nil {
		return false
	}
	for _, o := range st.Owns {
		if o.Kind == container.OwnedNetwork && o.Path == path {
			return true
		}
	}
	return false
}

// startTime is field 22 of /proc/PID/stat, 0 if the process is gone.
func startTime(pid int) uint64 {
	s, err := procstat.Read(pid)
	if err != nil {
		return 0
	}
	n, _ := s.StartTime()
	return n
}
