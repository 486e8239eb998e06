package tests

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
	return userRootfs(t)
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
	if d := diffLines(before, netState(t)); d != "" {
		t.Errorf("the host's network state changed after the containers ended:\n%s", d)
	}
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
	if d := diffLines(before, netState(t)); d != "" {
		t.Errorf("left behind by runs killed mid-create:\n%s", d)
	}
}
