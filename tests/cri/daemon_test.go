package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pvm "github.com/bulwark-sec/bulwark/pkg/vm"
)

const (
	cniBinDir = "/usr/lib/cni"
	// subnet is the crictl daemon's (bridge bwcri0), this package's own:
	// the bridge plugin puts the gateway address on the host bridge, and
	// host-local hands out the pods' addresses from the subnet. Each other
	// daemon gets the next bridge and /24 (bwcri1, 10.237.78.0/24, ...), so
	// two daemons never hand out one address twice.
	subnet = "10.237.77.0/24"
)

// network is one daemon's bridge and subnet.
type network struct{ bridge, subnet string }

func networkN(n int) network {
	return network{bridge: fmt.Sprintf("bwcri%d", n), subnet: fmt.Sprintf("10.237.%d.0/24", 77+n)}
}

// criConfig is a private containerd with the CRI plugin: its own root,
// state, sockets and CNI configuration; the sandbox image is the one the
// tests import; mirrors (for critest) send every pull to a local registry.
// restrict_oom_score_adj: the CRI asks -998 for a sandbox, and lowering
// oom_score_adj needs CAP_SYS_RESOURCE, which root lacks on some hosts
// (runc and bulwark alike then fail every sandbox); containerd then caps
// the value at its own, which any process may set.
const criConfig = `version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = %q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
%s`

// cniConfig is a bridge network on the package's own bridge and subnet,
// with its leases in the daemon's directory, and the portmap plugin for a
// pod's host ports (critest's "port mapping with host port and container
// port"). Only 127.0.0.1 is forwarded (conditionsV4): a pod's host port
// must not open the host's other addresses to it while the tests run. The
// plugin adds its rules only for a pod that asks for a host port and
// removes them with the pod; the chains it shares between pods
// (CNI-HOSTPORT-*) stay, as every CNI portmap leaves them.
const cniConfig = `{
  "cniVersion": "0.4.0",
  "name": "bwcri",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
  }, {
    "type": "portmap",
    "capabilities": {"portMappings": true},
    "conditionsV4": ["-d", "127.0.0.1/32"]
  }]
}`

// daemon is one private containerd with its CRI plugin.
type daemon struct {
	dir, sock, crictlConfig string
	net                     network
	cmd                     *exec.Cmd
	stopped                 bool
}

var (
	criOnce sync.Once
	criD    *daemon
	criErr  string
	seq     atomic.Int64
)

// sharedDaemon is the containerd the crictl tests share: runc as the
// default handler, bulwark and bulwark-hardened as `bulwark install
// containerd --harden` registers them.
func sharedDaemon(t *testing.T) *daemon {
	t.Helper()
	requireTools(t, crictlBin)
	criOnce.Do(func() {
		d, err := startDaemon("crictl", networkN(0), "runc", "", "", false)
		if err != nil {
			criErr = err.Error()
			return
		}
		criD = d
	})
	if criD == nil {
		t.Fatalf("containerd's CRI is not usable: %s", criErr)
	}
	return criD
}

// startDaemon starts containerd in workDir/NAME on net with defaultHandler as the
// CRI default, extra appended to its config, and imports the test images.
// binDir, when set, holds the containerd and runc shim to run instead of
// Debian's (scripts/install-cri.sh containerd-1.7). Its handlers are what
// `bulwark install containerd --harden` writes (bulwark, bulwark-hardened)
// or, with vm, `--vm` (bulwark, bulwark-vm). It is stopped, its pods
// removed and its data deleted when the tests end.
func startDaemon(name string, net network, defaultHandler, extra, binDir string, vm bool) (*daemon, error) {
	dir := filepath.Join(workDir, name)
	d := &daemon{dir: dir, sock: filepath.Join(dir, "c.sock"), net: net}
	for _, sub := range []string{"cni", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o711); err != nil { // see run: the floor's user namespace
		return nil, err
	}
	cfg := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf(criConfig, filepath.Join(dir, "root"), filepath.Join(dir, "state"), d.sock, d.sock+".ttrpc",
		filepath.Join(dir, "debug.sock"), pauseImage, defaultHandler, cniBinDir, filepath.Join(dir, "cni"), extra)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return nil, err
	}
	// The handlers as a cluster admin gets them: bulwark install.
	wrapper := filepath.Join(dir, "bulwark-harden")
	handlers := []string{"--harden", "--wrapper", wrapper}
	if vm {
		handlers = []string{"--vm", "--vm-wrapper", filepath.Join(dir, "bulwark-vm")}
	}
	if out, err := exec.Command(bulwarkBin, append(append([]string{"install", "--config", cfg, "--binary", bulwarkBin}, handlers...),
		"--cgroup-driver", "cgroupfs", "containerd")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bulwark install containerd: %v: %s", err, out)
	}
	if !vm {
		policyFile := filepath.Join(dir, "policy.json")
		if err := os.WriteFile(policyFile, []byte(`{"harden": true}`), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+bulwarkBin+" --harden --policy "+policyFile+" \"$@\"\n"), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cni", "10-bwcri.conflist"),
		[]byte(fmt.Sprintf(cniConfig, net.bridge, net.subnet, filepath.Join(dir, "cni-ipam"))), 0o600); err != nil {
		return nil, err
	}
	d.crictlConfig = filepath.Join(dir, "crictl.yaml")
	if err := os.WriteFile(d.crictlConfig, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.sock, d.sock)), 0o600); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command("containerd", "--config", cfg)
	if binDir != "" {
		// containerd finds its shim on PATH: the one built with it first.
		d.cmd = exec.Command(filepath.Join(binDir, "containerd"), "--config", cfg)
		d.cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
	}
	if vm {
		// The pod's network namespace has the CNI's eth0, which a VM
		// container carries into its guest: a guest kernel without a
		// virtio-net driver (a minimal kernel built before it had one)
		// refuses it, so the shims' bulwark boots Debian's then.
		if k, err := pvm.FindKernel(); err == nil && !k.NIC {
			if ks, _ := filepath.Glob("/boot/vmlinuz-*"); len(ks) > 0 {
				sort.Strings(ks)
				env := d.cmd.Env // keeps a PATH set above
				if env == nil {
					env = os.Environ()
				}
				d.cmd.Env = append(env, pvm.EnvKernel+"="+ks[len(ks)-1])
			}
		}
	}
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go d.cmd.Wait()
	atExit(func() { d.stop(); log.Close() })
	if !waitFor(30*time.Second, func() bool {
		return exec.Command("ctr", "--address", d.sock, "version").Run() == nil &&
			exec.Command(crictlBin, "--config", d.crictlConfig, "info").Run() == nil
	}) {
		b, _ := os.ReadFile(log.Name())
		return nil, fmt.Errorf("containerd did not answer within 30s:\n%s", lastLines(string(b), 20))
	}
	archive := filepath.Join(dir, "images.tar")
	if err := writeArchive(archive, map[string]imageSpec{
		podImage:   {cmd: []string{"/bin/sh"}},
		pauseImage: {cmd: pauseCmd},
	}); err != nil {
		return nil, fmt.Errorf("building the images: %w", err)
	}
	if out, err := exec.Command("ctr", "--address", d.sock, "-n", "k8s.io", "images", "import", archive).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ctr -n k8s.io images import: %v: %s", err, out)
	}
	return d, nil
}

// stop removes every pod, stops containerd and its shims, and removes
// what it left on the host: mounts, data, the bridge.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil || d.stopped {
		return
	}
	d.stopped = true
	crictl := func(args ...string) {
		exec.Command(crictlBin, append([]string{"--config", d.crictlConfig}, args...)...).Run()
	}
	crictl("rmp", "-af")
	stopProcess(d.cmd.Process.Pid, 20*time.Second)
	for _, pid := range processesWith("containerd-shim", d.sock) {
		stopProcess(pid, 5*time.Second)
	}
	// A shim stopped while bulwark was creating leaves that create's state
	// ("creating"): containerd would delete --force it, but it is gone.
	for _, id := range bulwarkStatesOf(d.dir) {
		exec.Command(bulwarkBin, "--root", runtimeRoot, "delete", "--force", id).Run()
	}
	removeAll(d.dir)
	exec.Command("ip", "link", "del", d.net.bridge).Run()
}

// crictl runs crictl against the daemon.
func (d *daemon) crictl(t testing.TB, args ...string) result {
	t.Helper()
	return runCmd(t, 2*time.Minute, nil, crictlBin, append([]string{"--config", d.crictlConfig}, args...)...)
}

// ok runs crictl and fails the test on a non-zero exit; it returns stdout
// without its trailing newline.
func (d *daemon) ok(t testing.TB, args ...string) string {
	t.Helper()
	r := d.crictl(t, args...)
	if r.code != 0 {
		t.Fatalf("crictl %s: %v\ncontainerd log:\n%s", strings.Join(args, " "), r, d.logTail())
	}
	return strings.TrimSpace(r.stdout)
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "containerd.log"))
	return lastLines(string(b), 15)
}

// podConfig is a PodSandboxConfig as crictl reads it (CRI's JSON names).
type podConfig struct {
	Metadata     map[string]any `json:"metadata"`
	Hostname     string         `json:"hostname,omitempty"`
	LogDirectory string         `json:"log_directory"`
	Linux        map[string]any `json:"linux,omitempty"`
}

// newPod writes a pod config for a fresh pod and returns its path.
func (d *daemon) newPod(t testing.TB, name string, linux map[string]any) string {
	t.Helper()
	n := fmt.Sprintf("%s-%d", name, seq.Add(1))
	p := podConfig{
		Metadata:     map[string]any{"name": n, "namespace": "bwtest", "uid": "uid-" + n, "attempt": 0},
		Hostname:     n,
		LogDirectory: filepath.Join(d.dir, "logs", n),
		Linux:        linux,
	}
	return writeJSON(t, p)
}

// runPod runs a sandbox with handler and removes it when the test ends.
func (d *daemon) runPod(t testing.TB, handler, podJSON string) string {
	t.Helper()
	id := d.ok(t, "runp", "--runtime", handler, podJSON)
	t.Cleanup(func() {
		d.crictl(t, "stopp", id)
		d.crictl(t, "rmp", "-f", id)
	})
	return id
}

// ctrConfig is a ContainerConfig as crictl reads it.
func ctrConfig(name string, attempt int, cmd []string, linux map[string]any) map[string]any {
	c := map[string]any{
		"metadata": map[string]any{"name": name, "attempt": attempt},
		"image":    map[string]any{"image": podImage},
		"command":  cmd,
		"log_path": fmt.Sprintf("%s-%d.log", name, attempt),
	}
	if linux != nil {
		c["linux"] = linux
	}
	return c
}

// startContainer creates and starts a container in the pod.
func (d *daemon) startContainer(t testing.TB, pod, podJSON string, cfg map[string]any) string {
	t.Helper()
	id := d.ok(t, "create", pod, writeJSON(t, cfg), podJSON)
	d.ok(t, "start", id)
	return id
}

func writeJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "*.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// inspect decodes `crictl inspect ID` (or inspectp).
func (d *daemon) inspect(t testing.TB, cmd, id string) map[string]any {
	t.Helper()
	var v map[string]any
	out := d.ok(t, cmd, "-o", "json", id)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("crictl %s %s: %v\n%s", cmd, id, err, out)
	}
	return v
}

// field walks nested maps: field(v, "status", "state").
func field(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
