package tests

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/pkg/network"
)

// The network tests' traffic stays on this machine: between their own
// containers, the host side of their own bridges and loopback. Masquerade
// to the outside is configured and its rule checked, never exercised.

// bgRun is a person's `bulwark run` left running in the background.
type bgRun struct {
	id   string
	cmd  *exec.Cmd
	out  string // file with its stdout and stderr
	done chan error
}

// userRunBG starts `bulwark run --name ID [flags] ROOTFS -- CMD` and waits
// until its output contains ready.
func (e *env) userRunBG(ready string, flags []string, rootfs string, cmd ...string) *bgRun {
	e.t.Helper()
	id := e.id()
	args := append([]string{"--root", e.root, "run", "--name", id}, flags...)
	args = append(append(args, rootfs, "--"), cmd...)
	out := filepath.Join(e.t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	c := exec.Command(bulwarkBin, args...)
	c.Stdout, c.Stderr = f, f
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	b := &bgRun{id: id, cmd: c, out: out, done: make(chan error, 1)}
	go func() { b.done <- c.Wait() }()
	e.t.Cleanup(func() { b.stop(e) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if strings.Contains(b.output(), ready) {
			return b
		}
		select {
		case err := <-b.done:
			b.done <- err
			e.t.Fatalf("bulwark run %v ended before %q: %v\n%s", flags, ready, err, b.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("bulwark run %v: no %q in 30s:\n%s", flags, ready, b.output())
		}
	}
}

func (b *bgRun) output() string {
	s, _ := os.ReadFile(b.out)
	return string(s)
}

// stop kills the container and waits for its run to delete it.
func (b *bgRun) stop(e *env) {
	if b.cmd.ProcessState != nil {
		return
	}
	exec.Command(bulwarkBin, "--root", e.root, "kill", b.id, "KILL").Run()
	select {
	case err := <-b.done:
		b.done <- err
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		e.t.Errorf("bulwark run of %s did not end after its container was killed", b.id)
	}
}

// netRootfs is the test rootfs (busybox, httpd and netprobe payloads),
// skipping where the CNI plugins are not installed.
func netRootfs(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "macvlan", "ipvlan", "host-device"} {
		if _, err := os.Stat(filepath.Join(network.PluginPath[0], p)); err != nil {
			t.Skipf("CNI plugin %s not installed (apt-get install containernetworking-plugins): %v", p, err)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	rootfs := userRootfs(t)
	// Names are looked up in /etc/hosts only: a name of another network
	// must not become a DNS query to the host's resolver, off the machine.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/nsswitch.conf"), []byte("hosts: files\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return rootfs
}

// containerIP is the address of the container's eth0 from its record.
func containerIP(t *testing.T, e *env, id string) string {
	t.Helper()
	b, err := os.ReadFile(network.RecordPath(e.root, id))
	if err != nil {
		t.Fatalf("network record of %s: %v", id, err)
	}
	m := regexp.MustCompile(`"ip":"([0-9.]+)"`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no ip in the record of %s: %s", id, b)
	}
	return m[1]
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// netState lists what attaching a container may add to the host: links
// and addresses, iptables rules, IPAM leases, network namespaces and
// records. Lines naming interfaces of other tests' engines are left out.
func netState(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, c := range [][]string{
		{"ip", "-o", "link", "show"},
		{"ip", "-o", "addr", "show"},
		{"iptables-save"},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "#") || strings.HasPrefix(l, ":") && strings.Contains(l, "[") {
				// iptables-save's comments and chain counters change by
				// themselves; chains are kept by name below.
				if strings.HasPrefix(l, ":") {
					l = strings.Fields(l)[0]
				} else {
					continue
				}
			}
			if c[0] == "ip" {
				// A link's name and an address are what a container
				// adds; flags, state and lifetimes change by themselves.
				f := strings.Fields(l)
				if len(f) < 4 || !strings.Contains(l, "bulwark") && !strings.Contains(l, "veth") {
					continue
				}
				l = strings.Join(f[:2], " ")
				if c[1] == "-o" && c[2] == "addr" {
					l += " " + f[3]
				}
			}
			parts = append(parts, l)
		}
	}
	for _, d := range []string{"ipam", "netns", "attach", "cache", "hosts"} {
		filepath.Walk(filepath.Join(network.Run, d), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() && !strings.HasSuffix(p, "/lock") && !strings.Contains(p, "last_reserved_ip") {
				parts = append(parts, p)
			}
			return nil
		})
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

func diffLines(before, after string) string {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	b, a := set(before), set(after)
	var out []string
	for l := range a {
		if !b[l] {
			out = append(out, "+ "+l)
		}
	}
	for l := range b {
		if !a[l] {
			out = append(out, "- "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// assertNetStateBack fails the test if the host's network state is not
// before's again within a few seconds: a network namespace's last
// reference going away frees it, and whatever is left in it, from a kernel
// work queue, not at once.
func assertNetStateBack(t *testing.T, before, what string) {
	t.Helper()
	var d string
	for i := 0; i < 25; i++ {
		if d = diffLines(before, netState(t)); d == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("%s:\n%s", what, d)
}

func TestNetworkBridgePublishesAPortAndTearsDownExactly(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	// The first container on bridge makes bulwark0 and its rules, and
	// the first published port portmap's shared chains: they stay as long
	// as the network; what one container adds must go.
	if r := e.userRun(nil, []string{"--net", "bridge", "-p", "18079:80"}, rootfs, "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)

	srv := e.userRunBG("listening", []string{"--net", "bridge", "-p", "18080:80"}, rootfs, "/usr/local/bin/httpd", "-addr", "0.0.0.0:80")
	ip := containerIP(t, e, srv.id)
	if !strings.HasPrefix(ip, "10.89.0.") {
		t.Errorf("container address %s, want one in bridge's 10.89.0.0/24", ip)
	}
	// Published on the host's loopback and on the bridge's address.
	for _, url := range []string{"http://127.0.0.1:18080/", "http://10.89.0.1:18080/"} {
		if body, err := httpGet(url); err != nil || body != "ok" {
			t.Errorf("GET %s from the host: %q, %v", url, body, err)
		}
	}
	nat, _ := exec.Command("iptables", "-t", "nat", "-S").Output()
	if !regexp.MustCompile(`-s ` + regexp.QuoteMeta(ip) + `/32 .*-j CNI-`).Match(nat) {
		t.Errorf("no masquerade chain for %s in the nat table:\n%s", ip, nat)
	}
	if !strings.Contains(string(nat), "MASQUERADE") {
		t.Errorf("no MASQUERADE rule in the nat table:\n%s", nat)
	}
	if _, err := os.Stat(filepath.Join(network.Run, "ipam", "bridge", ip)); err != nil {
		t.Errorf("no IPAM lease for %s: %v", ip, err)
	}

	// Another container on bridge: by address and by name, and its
	// resolv.conf is the host's.
	r := e.userRun(nil, []string{"--net", "bridge"}, rootfs, "/bin/sh", "-c",
		"/usr/local/bin/netprobe get http://"+ip+"/ && /usr/local/bin/netprobe get http://"+srv.id+"/ && cat /etc/resolv.conf")
	if r.code != 0 || strings.Count(r.stdout, "ok\n") != 2 {
		t.Errorf("a container on bridge reaching %s by address and name: %v", srv.id, r)
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	for _, l := range strings.Split(string(hostResolv), "\n") {
		if strings.HasPrefix(l, "nameserver") && !strings.Contains(l, " 127.") && !strings.Contains(r.stdout, l) {
			t.Errorf("container resolv.conf lacks the host's %q:\n%s", l, r.stdout)
		}
	}

	srv.stop(e)
	assertNetStateBack(t, before, "the host's network state changed after the containers ended")
}

func TestNetworkSIGKILLMidCreateIsCollected(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	if r := e.userRun(nil, []string{"--net", "bridge", "-p", "18079:80"}, rootfs, "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	// Kill the person's run at several points of its create: the
	// attachment may be anywhere from a bare record to a full one whose
	// container does not exist yet, or exists and owns it.
	for i, delay := range []time.Duration{5, 20, 40, 80, 160} {
		id := e.id()
		c := exec.Command(bulwarkBin, "--root", e.root, "run", "--name", id, "--net", "bridge", "-p", fmt.Sprintf("%d:80", 18100+i), rootfs, "--", "/bin/sleep", "30")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		if r := e.bw("delete", "-f", id); r.code != 0 {
			t.Errorf("delete -f %s after SIGKILL at %v: %v", id, delay, r)
		}
	}
	if r := e.bw("gc"); r.code != 0 {
		t.Errorf("gc: %v", r)
	}
	assertNetStateBack(t, before, "left behind by runs killed mid-create")
}

// TestNetworkDeleteCompletesWhereTheMasqueradeChainWasNeverMade removes a
// container whose bridge attachment has no masquerade rule or chain, as
// when its run was SIGKILLed inside the bridge plugin's ADD after the
// lease and veth but before the chain (seen once in a full run): the
// plugin's DEL then failed on iptables-nft's "Chain ... does not exist"
// every time, and delete -f with it.
func TestNetworkDeleteCompletesWhereTheMasqueradeChainWasNeverMade(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	before := netState(t)
	id := e.id()
	if r := e.bw("run", "-d", "--name", id, "--net", "bridge", rootfs, "--", "/bin/sleep", "30"); r.code != 0 {
		t.Fatalf("run -d on bridge: %v", r)
	}
	ip := containerIP(t, e, id)
	out, err := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S: %v\n%s", err, out)
	}
	var rule []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "-s "+ip+"/32 ") || strings.Contains(l, "-s "+ip+" ") {
			rule = strings.Fields(l)
		}
	}
	chain := ""
	for i, f := range rule {
		if f == "-j" && i+1 < len(rule) {
			chain = rule[i+1]
		}
	}
	if !strings.HasPrefix(chain, "CNI-") {
		t.Fatalf("no masquerade jump for %s in nat POSTROUTING:\n%s", ip, out)
	}
	// Undo the plugin's masquerade by hand: the rule, then its chain.
	// The comment's quotes are the shell's in -S output; -D by number.
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "-A POSTROUTING") {
			n++
			if strings.Contains(l, "-j "+chain) {
				break
			}
		}
	}
	for _, c := range [][]string{{"-t", "nat", "-D", "POSTROUTING", strconv.Itoa(n)}, {"-t", "nat", "-F", chain}, {"-t", "nat", "-X", chain}} {
		if out, err := exec.Command("iptables", c...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v\n%s", c, err, out)
		}
	}
	if r := e.bw("rm", "-f", id); r.code != 0 {
		t.Errorf("rm -f of a container whose masquerade chain was never made: %v", r)
	}
	if _, err := os.Stat(network.RecordPath(e.root, id)); err == nil {
		t.Errorf("the attachment's record stayed")
	}
	assertNetStateBack(t, before, "left behind by the delete")
}

// netEnv is an env whose named networks live in a directory of the test's.
type netEnv struct {
	*env
	dir string
}

func newNetEnv(t *testing.T) *netEnv {
	n := &netEnv{env: newEnv(t), dir: t.TempDir()}
	return n
}

// bwNet runs bulwark with this env's --root and --network-dir.
func (n *netEnv) bwNet(args ...string) result {
	n.t.Helper()
	return n.bw(append([]string{"--network-dir", n.dir}, args...)...)
}

// createNetwork makes a named network and removes it when the test ends.
func (n *netEnv) createNetwork(name string, flags ...string) {
	n.t.Helper()
	if r := n.bwNet(append(append([]string{"network", "create"}, flags...), name)...); r.code != 0 {
		n.t.Fatalf("network create %s: %v", name, r)
	}
	n.t.Cleanup(func() {
		if r := n.bwNet("network", "rm", name); r.code != 0 {
			n.t.Errorf("network rm %s: %v", name, r)
		}
	})
}

func TestNetworkNamedNetworksResolveByNameAndIsolate(t *testing.T) {
	n := newNetEnv(t)
	rootfs := netRootfs(t)
	n.createNetwork("front")
	n.createNetwork("back")
	netDir := []string{"--network-dir", n.dir}
	srv := n.userRunBG("listening", append(netDir, "--net", "front", "--hostname", "web"), rootfs, "/usr/local/bin/httpd", "-addr", "0.0.0.0:80")
	ip := containerIP(t, n.env, srv.id)
	if !strings.HasPrefix(ip, "10.89.1.") {
		t.Errorf("front's first container got %s, want an address in 10.89.1.0/24", ip)
	}
	get := func(net, url string) result {
		return n.userRun(nil, append(netDir, "--net", net), rootfs, "/usr/local/bin/netprobe", "get", url)
	}
	for _, url := range []string{"http://" + ip + "/", "http://" + srv.id + "/", "http://web/"} {
		if r := get("front", url); r.code != 0 || r.stdout != "ok\n" {
			t.Errorf("on front, GET %s: %v", url, r)
		}
	}
	// Other networks: not by address (routed between bridges: dropped),
	// not by name (their hosts files do not list it).
	for _, tc := range []struct{ net, url string }{
		{"back", "http://" + ip + "/"},
		{"bridge", "http://" + ip + "/"},
		{"back", "http://web/"},
	} {
		if r := get(tc.net, tc.url); r.code == 0 || r.stdout == "ok\n" {
			t.Errorf("on %s, GET %s answered across networks: %v", tc.net, tc.url, r)
		}
	}
	r := n.bwNet("network", "inspect", "front")
	if r.code != 0 || !strings.Contains(r.stdout, `"id": "`+srv.id+`"`) || !strings.Contains(r.stdout, ip) {
		t.Errorf("network inspect front does not list %s at %s: %v", srv.id, ip, r)
	}
	if r := n.bwNet("network", "rm", "front"); r.code == 0 || !strings.Contains(r.stderr, "in use by "+srv.id) {
		t.Errorf("network rm of a network in use: %v", r)
	}
	r = n.bwNet("network", "ls")
	if r.code != 0 || !regexp.MustCompile(`(?m)^front\s+bridge\s+10\.89\.1\.0/24\s+bulwark1\s+1$`).MatchString(r.stdout) {
		t.Errorf("network ls:\n%v", r)
	}
	srv.stop(n.env)
}

func TestNetworkContainersCannotSpoofOrReachHostLoopback(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	// A service the host binds to its loopback only.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "host secret") }))
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)

	for _, flags := range [][]string{nil, {"--cap-add", "NET_RAW", "--cap-add", "NET_ADMIN"}} {
		args := append([]string{"--net", "bridge"}, flags...)
		r := e.userRun(nil, args, rootfs, "/bin/sh", "-c", `
			p=/usr/local/bin/netprobe
			$p raw
			echo setaddr $($p setaddr eth0 10.89.0.250)
			echo setmac $($p setmac eth0 02:42:ac:11:00:99)
			ip route add 127.0.0.0/8 dev eth0 2>/dev/null && echo route OK || echo route EPERM
			$p get http://10.89.0.1:`+port+`/
			$p get http://127.0.0.1:`+port+`/
			grep CapEff /proc/self/status
			true`)
		// AF_PACKET is refused by the seccomp profile's socket rule
		// before the kernel's capability check could be.
		for _, want := range []string{"inet-raw EPERM", "packet (EPERM|EAFNOSUPPORT)", "setaddr EPERM", "setmac EPERM", "route EPERM"} {
			if !regexp.MustCompile("(?m)^" + want + "$").MatchString(r.stdout) {
				t.Errorf("%v: want %q:\n%v", flags, want, r)
			}
		}
		if strings.Contains(r.stdout, "host secret") {
			t.Errorf("%v: a container reached the host's loopback-only service:\n%v", flags, r)
		}
	}
	// The rule that keeps a neighbour from routing to 127/8 through
	// route_localnet (portmap sets it on the bridge).
	if err := exec.Command("iptables", "-w", "-C", "INPUT", "-i", "bulwark+", "!", "-s", "127.0.0.0/8", "-d", "127.0.0.0/8",
		"-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP").Run(); err != nil {
		t.Errorf("no loopback guard in INPUT: %v", err)
	}
}

// testLink makes an interface for the test to hand out, up, with addr if
// given, removed when the test ends: a dummy, or where the kernel has no
// dummy driver one end of a veth pair (its peer, up so that the pair has a
// carrier, has no address and no master: the pair is a wire between two
// ends on this host).
func testLink(t *testing.T, name, addr string) {
	t.Helper()
	exec.Command("ip", "link", "del", name).Run()
	cmds := [][]string{{"ip", "link", "set", name, "up"}}
	if addr != "" {
		cmds = append(cmds, []string{"ip", "addr", "add", addr, "dev", name})
	}
	if out, err := exec.Command("ip", "link", "add", name, "type", "dummy").CombinedOutput(); err != nil {
		if out2, err := exec.Command("ip", "link", "add", name, "type", "veth", "peer", "name", name+"p").CombinedOutput(); err != nil {
			t.Skipf("neither a dummy (%s) nor a veth pair (%s) can be made here", out, out2)
		}
		cmds = append(cmds, []string{"ip", "link", "set", name + "p", "up"})
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
}

// kernelHasLinkType tells whether the kernel can make links of typ.
func kernelHasLinkType(t *testing.T, parent, typ string) bool {
	t.Helper()
	out, err := exec.Command("ip", "link", "add", "bwtprobe0", "link", parent, "type", typ).CombinedOutput()
	exec.Command("ip", "link", "del", "bwtprobe0").Run()
	if err != nil {
		t.Logf("ip link add type %s: %v: %s", typ, err, out)
	}
	return err == nil
}

func TestNetworkMacvlanAndIPvlanOnATestParent(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	for i, mode := range []string{"macvlan", "ipvlan"} {
		t.Run(mode, func(t *testing.T) {
			parent := "bwtpar" + strconv.Itoa(i)
			subnet := fmt.Sprintf("10.89.%d.", 200+i)
			testLink(t, parent, subnet+"1/24")
			if !kernelHasLinkType(t, parent, mode) {
				t.Skipf("this kernel has no %s driver", mode)
			}
			before := netState(t)
			flags := []string{"--net", mode + ":" + parent}
			srv := e.userRunBG("listening", flags, rootfs, "/usr/local/bin/httpd", "-addr", "0.0.0.0:80")
			ip := containerIP(t, e, srv.id)
			if !strings.HasPrefix(ip, subnet) || ip == subnet+"1" {
				t.Errorf("server got %s, want an address of %s's %s0/24 other than its own", ip, parent, subnet)
			}
			r := e.userRun(nil, flags, rootfs, "/bin/sh", "-c", "/usr/local/bin/netprobe get http://"+srv.id+"/")
			if r.code != 0 || r.stdout != "ok\n" {
				t.Errorf("a second container reaching the first by name on %s: %v", mode, r)
			}
			srv.stop(e)
			assertNetStateBack(t, before, "left behind")
		})
	}
}

func TestNetworkDedicatedInterfaceMovesInAndBack(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	testLink(t, "bwtded0", "")
	mac, err := os.ReadFile("/sys/class/net/bwtded0/address")
	if err != nil {
		t.Fatal(err)
	}
	srv := e.userRunBG("ready", []string{"--net", "dedicated:bwtded0"}, rootfs, "/bin/sh", "-c", "ip -o link show; echo ready; sleep 30")
	if _, err := os.Stat("/sys/class/net/bwtded0"); err == nil {
		t.Errorf("bwtded0 still in the host's namespace while the container has it")
	}
	if out := srv.output(); !strings.Contains(out, strings.TrimSpace(string(mac))) {
		t.Errorf("the container does not have the interface (MAC %s):\n%s", mac, out)
	}
	srv.stop(e)
	back, err := os.ReadFile("/sys/class/net/bwtded0/address")
	if err != nil || string(back) != string(mac) {
		t.Errorf("bwtded0 not back in the host's namespace after the container: %q, %v", back, err)
	}
}

func TestNetworkContainerJoinsAnothersNamespace(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	srv := e.userRunBG("listening", []string{"--net", "bridge"}, rootfs, "/usr/local/bin/httpd", "-addr", "127.0.0.1:80")
	r := e.userRun(nil, []string{"--net", "container:" + srv.id}, rootfs, "/usr/local/bin/netprobe", "get", "http://127.0.0.1:80/")
	if r.code != 0 || r.stdout != "ok\n" {
		t.Errorf("a container on container:%s reaching its loopback service: %v", srv.id, r)
	}
	srv.stop(e)
	if r := e.userRun(nil, []string{"--net", "container:" + srv.id}, rootfs, "/bin/true"); r.code == 0 || !strings.Contains(r.stderr, "container:"+srv.id) {
		t.Errorf("container: of a container that is gone: %v", r)
	}
}

func TestNetworkCNIConfigListOfTheUsersOwn(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	dir := t.TempDir()
	conf := `{"cniVersion": "1.0.0", "name": "bwtown", "plugins": [{"type": "bridge", "bridge": "bwtown0", "isGateway": true,
		"ipam": {"type": "host-local", "ranges": [[{"subnet": "10.89.250.0/24"}]], "dataDir": "` + dir + `/ipam"}}]}`
	if err := os.WriteFile(filepath.Join(dir, "own.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", "bwtown0").Run() })
	r := e.userRun(nil, []string{"--cni-dir", dir, "--net", "cni:bwtown"}, rootfs, "/usr/local/bin/netprobe", "addr", "eth0")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "10.89.250.") {
		t.Errorf("--net cni:bwtown: %v", r)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "ipam", "bwtown"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "10.") {
			t.Errorf("IPAM lease %s left behind", e.Name())
		}
	}
}

func TestNetworkBadInputFailsBeforeStartLeavingNothing(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	if r := e.userRun(nil, []string{"--net", "bridge", "-p", "18079:80"}, rootfs, "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	held, err := net.Listen("tcp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	heldPort := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	cni := t.TempDir()
	for name, conf := range map[string]string{
		"broken.conflist":   `{"cniVersion": "1.0.0", "name": "broken", "plugins": [{"type": "bridge"`,
		"noplugin.conflist": `{"cniVersion": "1.0.0", "name": "noplugin", "plugins": [{"type": "bulwark-no-such-plugin"}]}`,
	} {
		if err := os.WriteFile(filepath.Join(cni, name), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := netState(t)
	check := func(name string, flags []string, want string) {
		t.Helper()
		r := e.userRun(nil, append([]string{"--cni-dir", cni}, flags...), rootfs, "/bin/echo", "started")
		id := e.ids[len(e.ids)-1]
		if r.code == 0 || strings.Contains(r.stdout, "started") || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: got %v, want a failure naming %q before the payload", name, r, want)
		}
		e.assertUserRunGone(id)
		assertNoLeftovers(t, id)
		if _, err := os.Stat(network.RecordPath(e.root, id)); err == nil {
			t.Errorf("%s: network record left behind", name)
		}
	}
	check("unknown network", []string{"--net", "nonesuch"}, "--net nonesuch: network \"nonesuch\": no such network")
	check("port in use on the host", []string{"--net", "bridge", "-p", heldPort + ":80"}, "host port "+heldPort+"/tcp is in use on the host")
	check("missing parent", []string{"--net", "macvlan:bwt-nope"}, `parent interface "bwt-nope"`)
	check("missing dedicated interface", []string{"--net", "dedicated:bwt-nope"}, `interface "bwt-nope"`)
	check("malformed CNI config", []string{"--net", "cni:broken"}, "broken.conflist")
	check("missing plugin", []string{"--net", "cni:noplugin"}, `failed to find plugin "bulwark-no-such-plugin"`)
	check("port on a network without portmap", []string{"-p", "18090:80"}, "cannot publish ports")
	check("malformed port", []string{"--net", "bridge", "-p", "80"}, "--publish 80: want [IP:]HOST:CONTAINER")
	check("unknown container", []string{"--net", "container:bwt-nope"}, "container:bwt-nope")
	assertNetStateBack(t, before, "left behind by refused runs")

	// A port another container publishes.
	srv := e.userRunBG("listening", []string{"--net", "bridge", "-p", "18091:80"}, rootfs, "/usr/local/bin/httpd", "-addr", "0.0.0.0:80")
	check("port published by another container", []string{"--net", "bridge", "-p", "18091:81"}, "already published by container "+srv.id)
	srv.stop(e)
	assertNetStateBack(t, before, "left behind")
}

func TestNetworkFiftyConcurrentContainersGetDistinctAddresses(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	if r := e.userRun(nil, []string{"--net", "bridge"}, rootfs, "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	const n = 50
	type out struct {
		id string
		r  result
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.id()
	}
	ch := make(chan out, n)
	start := time.Now()
	for _, id := range ids {
		go func() {
			// Each holds its address until all have one.
			c := exec.Command(bulwarkBin, "--root", e.root, "run", "--name", id, "--net", "bridge", rootfs, "--",
				"/bin/sh", "-c", "/usr/local/bin/netprobe addr eth0; sleep 3")
			var so, se strings.Builder
			c.Stdout, c.Stderr = &so, &se
			err := runWithTimeout(c, 3*time.Minute)
			code := 0
			if err != nil {
				code = -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
			}
			ch <- out{id, result{stdout: so.String(), stderr: se.String(), code: code}}
		}()
	}
	seen := map[string]string{}
	for range n {
		o := <-ch
		f := strings.Fields(o.r.stdout)
		if o.r.code != 0 || len(f) < 1 {
			t.Errorf("%s: %v", o.id, o.r)
			continue
		}
		if other, dup := seen[f[0]]; dup {
			t.Errorf("%s and %s both got %s", o.id, other, f[0])
		}
		seen[f[0]] = o.id
	}
	t.Logf("%d containers on bridge started concurrently, %d distinct addresses, all done in %v", n, len(seen), time.Since(start).Round(time.Millisecond))
	assertNetStateBack(t, before, "left behind")
}

func TestNetworkDetachedContainerPublishesUntilRemoved(t *testing.T) {
	e := newEnv(t)
	rootfs := netRootfs(t)
	if r := e.userRun(nil, []string{"--net", "bridge", "-p", "18079:80"}, rootfs, "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	id := e.id()
	if r := e.bw("run", "-d", "--name", id, "--net", "bridge", "-p", "18092:80", rootfs, "--", "/usr/local/bin/httpd", "-addr", "0.0.0.0:80"); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	var body string
	var err error
	for i := 0; i < 100; i++ {
		if body, err = httpGet("http://127.0.0.1:18092/"); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body != "ok" {
		t.Errorf("GET the detached container's published port: %q, %v", body, err)
	}
	if r := e.bw("rm", "-f", id); r.code != 0 {
		t.Fatalf("rm -f: %v", r)
	}
	assertNetStateBack(t, before, "left behind after rm -f")
}
