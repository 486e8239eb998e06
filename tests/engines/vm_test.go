package engines

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
	"github.com/bulwark-sec/bulwark/pkg/vm"
)

// requireVM skips when this host cannot boot a VM container: no QEMU or
// no readable guest kernel (scripts/install-vm.sh installs both).
func requireVM(t *testing.T) {
	t.Helper()
	if why := daemontest.VMMissing(); why != "" {
		t.Skip(why)
	}
}

// TestDockerRunRuntimeBulwarkVMRunsThePayloadInAVM: `bulwark install docker
// --vm` registers bulwark-vm in daemon.json, dockerd accepts it, and
// `docker run --runtime bulwark-vm IMAGE CMD` runs CMD on the guest's own
// kernel with the memory limit as (less than) the guest's RAM; docker exec
// runs in the guest, docker exec -t with a pty of the guest; docker stop's
// SIGTERM reaches the payload's trap, whose status docker reports; its
// output reaches docker logs; nothing is left after docker rm; --undo
// restores the config.
func TestDockerRunRuntimeBulwarkVMRunsThePayloadInAVM(t *testing.T) {
	const orig = "{\"max-concurrent-downloads\": 2}\n"
	d := startVMDocker(t, "docker-vm", orig)
	docker := d.docker
	cfg := d.cfg
	hostRelease := hostKernel()
	const name = "bwe-vm"
	r := docker("run", "-d", "--name", name, "--runtime", "bulwark-vm", "--network", "none", "-m", "512m", "bwtest:1",
		"sh", "-c", `echo kernel=$(uname -r); grep MemTotal /proc/meminfo; echo to-stderr >&2; trap "exit 7" TERM; while :; do sleep 1; done`)
	if r.code != 0 {
		t.Fatalf("docker run -d --runtime bulwark-vm: %v", r)
	}
	defer docker("rm", "-f", name)
	var logs result
	if !waitFor(180*time.Second, func() bool {
		logs = docker("logs", name)
		return strings.Contains(logs.stderr, "to-stderr")
	}) {
		t.Fatalf("the payload did not start within 180 s: %v", logs)
	}
	if !strings.Contains(logs.stdout, "kernel=") || strings.Contains(logs.stdout, "kernel="+hostRelease) {
		t.Errorf("the payload should run on the guest's kernel, not the host's %s: %q", hostRelease, logs.stdout)
	}
	var memKB int64
	for _, l := range strings.Split(logs.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			memKB = atoi(f[1])
		}
	}
	if memKB == 0 || memKB > 512<<10 {
		t.Errorf("guest RAM %d kB, want under the 512 MiB limit (QEMU lives in it too)", memKB)
	}
	x := docker("exec", name, "sh", "-c", "echo exec-kernel=$(uname -r); exit 4")
	if x.code != 4 || !strings.Contains(x.stdout, "exec-kernel=") || strings.Contains(x.stdout, "exec-kernel="+hostRelease) {
		t.Errorf("docker exec: %v; want exit 4 on the guest's kernel", x)
	}
	// docker exec -t: containerd runs exec --detach --console-socket, and
	// the pty master it receives carries the guest's pty.
	if _, err := exec.LookPath("script"); err == nil {
		line := shellQuote([]string{dockerBin, "-H", "unix://" + d.sock, "exec", "-t", name, "sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo guest-terminal; exit 5"})
		tx := runCmd(t, nil, "script", "-qefc", line, "/dev/null")
		if tx.code != 5 || !strings.Contains(tx.stdout, "/dev/pts/") || !strings.Contains(tx.stdout, "guest-terminal") {
			t.Errorf("docker exec -t: %v; want a pts of the guest and exit 5", tx)
		}
	} else {
		t.Log("docker exec -t not tried: no script(1) to give docker a terminal")
	}
	if r := docker("stop", "-t", "60", name); r.code != 0 {
		t.Fatalf("docker stop: %v", r)
	}
	if code := strings.TrimSpace(docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout); code != "7" {
		t.Errorf("exit code after docker stop: %s, want the payload's trap's 7", code)
	}
	if r := docker("rm", name); r.code != 0 {
		t.Fatalf("docker rm: %v", r)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived docker rm: %v", ps)
	}
	mustBW(t, "install", "--undo", "--config", cfg, "docker")
	if got := read(t, cfg); got != orig {
		t.Errorf("--undo left %q, want %q", got, orig)
	}
}

// vmDocker is a dockerd of the test's own whose daemon.json `bulwark
// install docker --vm` wrote, with the test image imported.
type vmDocker struct {
	cfg, sock string
	docker    func(args ...string) result
}

// startVMDocker writes orig as the daemon.json under workDir/dir, runs
// `bulwark install docker --vm` with flags on it, starts a dockerd with it
// (stopped when the test ends) and imports the test image. It skips
// without the engine or a VM.
func startVMDocker(t *testing.T, dir, orig string, flags ...string) *vmDocker {
	t.Helper()
	requireEngine(t, "dockerd", dockerBin, "containerd", "containerd-shim-runc-v2")
	requireVM(t)
	dir = filepath.Join(workDir, dir)
	os.MkdirAll(dir, 0o700)
	cfg := filepath.Join(dir, "daemon.json")
	os.WriteFile(cfg, []byte(orig), 0o644)
	mustBW(t, append(append([]string{"install", "--config", cfg, "--binary", bulwarkBin, "--vm"}, flags...), "docker")...)
	d, err := startDockerd(dir, "--config-file", cfg)
	if err != nil {
		t.Fatalf("dockerd refused the installed daemon.json: %v", err)
	}
	t.Cleanup(d.stop)
	v := &vmDocker{cfg: cfg, sock: d.sock}
	v.docker = func(args ...string) result {
		return runCmd(t, nil, dockerBin, append([]string{"-H", "unix://" + d.sock}, args...)...)
	}
	if r := v.docker("import", rootfsTarball(t), "bwtest:1"); r.code != 0 {
		t.Fatalf("docker import: %v", r)
	}
	return v
}

// hostKernel is the host's kernel release, which a guest's must not be.
func hostKernel() string {
	var host unix.Utsname
	unix.Uname(&host)
	return unix.ByteSliceToString(host.Release[:])
}

// waitLogs waits until the container's docker logs contain want.
func waitLogs(t *testing.T, docker func(args ...string) result, name, want string, wait time.Duration) result {
	t.Helper()
	var logs result
	if !waitFor(wait, func() bool {
		logs = docker("logs", name)
		return strings.Contains(logs.stdout+logs.stderr, want)
	}) {
		t.Fatalf("no %q in the logs of %s within %v: %v", want, name, wait, logs)
	}
	return logs
}

// TestDockerRunTTYBulwarkVMFollowsTheResize: `docker run -t -d --runtime
// bulwark-vm` gives the payload a pty of the guest, and a resize of the
// container's tty through dockerd (its API's resize, which `docker
// attach` and `docker run -it` send when the person's window changes;
// containerd then resizes the master bulwark handed over at create)
// reaches that pty: the guest kernel signals SIGWINCH to the payload and
// its `stty size` reads the new size.
func TestDockerRunTTYBulwarkVMFollowsTheResize(t *testing.T) {
	d := startVMDocker(t, "docker-vm-tty", "{}\n")
	const name = "bwe-vm-tty"
	r := d.docker("run", "-t", "-d", "--name", name, "--runtime", "bulwark-vm", "--network", "none", "bwtest:1",
		"sh", "-c", `trap 'echo "winch=$(stty size)"' WINCH; echo "tty=$(tty) kernel=$(uname -r)"; echo started; while :; do sleep 1; done`)
	if r.code != 0 {
		t.Fatalf("docker run -t -d --runtime bulwark-vm: %v", r)
	}
	defer d.docker("rm", "-f", name)
	logs := waitLogs(t, d.docker, name, "started", 180*time.Second)
	if !strings.Contains(logs.stdout, "tty=/dev/pts/") || strings.Contains(logs.stdout, "kernel="+hostKernel()) {
		t.Errorf("docker run -t: want a pts of the guest's kernel, not the host's %s: %q", hostKernel(), logs.stdout)
	}
	dockerResize(t, d.sock, name, 40, 120)
	waitLogs(t, d.docker, name, "winch=40 120", 60*time.Second)
	if r := d.docker("rm", "-f", name); r.code != 0 {
		t.Fatalf("docker rm -f: %v", r)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived docker rm: %v", ps)
	}
}

// dockerResize asks dockerd to resize a container's tty, as the docker
// CLI does for a terminal it attached (there is no command for it alone).
func dockerResize(t *testing.T, sock, name string, rows, cols int) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := c.Post(fmt.Sprintf("http://docker/containers/%s/resize?h=%d&w=%d", name, rows, cols), "text/plain", nil)
	if err != nil {
		t.Fatalf("resize %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("resize %s: %s: %s", name, resp.Status, b)
	}
}

func atoi(s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// qemuProcesses lists the QEMU processes running now.
var qemuProcesses = daemontest.QEMUProcesses

// guestExecTTY is what an exec -t into a VM container runs: its pty's
// name, whether stdin and stdout are terminals, the kernel, and status 5.
const guestExecTTY = "tty; [ -t 0 ] && [ -t 1 ] && echo guest-terminal; echo exec-kernel=$(uname -r); exit 5"

// checkGuestExecTTY: the exec -t of guestExecTTY got a pts of a kernel
// that is not the host's, and its status back.
func checkGuestExecTTY(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 5 || !strings.Contains(r.stdout, "/dev/pts/") || !strings.Contains(r.stdout, "guest-terminal") ||
		!strings.Contains(r.stdout, "exec-kernel=") || strings.Contains(r.stdout, "exec-kernel="+hostKernel()) {
		t.Errorf("%s: %v; want a pts on the guest's kernel (not the host's %s) and exit 5", what, r, hostKernel())
	}
}

// guestWaits is a VM container's payload for the exec tests: it reports
// the guest's kernel and waits for /go, which an exec makes, then exits 3.
const guestWaits = "echo kernel=$(uname -r); while [ ! -e /go ]; do sleep 1; done; exit 3"

// waitOutput waits until the running command's stdout holds want.
func waitOutput(t *testing.T, a *asyncCmd, want string, wait time.Duration) {
	t.Helper()
	if !waitFor(wait, func() bool {
		b, _ := os.ReadFile(a.out)
		return strings.Contains(string(b), want)
	}) {
		b, _ := os.ReadFile(a.out)
		e, _ := os.ReadFile(a.err)
		t.Fatalf("%v: no %q within %v\nstdout: %s\nstderr: %s", a.cmd.Args, want, wait, b, e)
	}
}

// waitDone waits (bounded) for the command's end and returns its result.
func waitDone(t *testing.T, a *asyncCmd, wait time.Duration) result {
	t.Helper()
	select {
	case <-a.done:
		return a.res
	case <-time.After(wait):
		t.Fatalf("%v: still running after %v", a.cmd.Args, wait)
	}
	return result{}
}

// checkRunOnGuest: the run's payload reported a kernel that is not the
// host's and exited 3.
func checkRunOnGuest(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 3 || !strings.Contains(r.stdout, "kernel=") || strings.Contains(r.stdout, "kernel="+hostKernel()) {
		t.Fatalf("%s: exit %d, stdout %q: want 3 and the guest's kernel, not the host's %s", what, r.code, r.stdout, hostKernel())
	}
}

// TestPodmanRunsTheBulwarkVMWrapper: the wrapper `bulwark install podman
// --vm` writes is a runtime podman runs a container in a VM with: `podman
// run` gets the payload's output and status from a guest kernel, and
// `podman exec -t` into it (conmon's exec --console-socket) a pty of the
// guest and the exec'd process's status; no QEMU is left after --rm.
func TestPodmanRunsTheBulwarkVMWrapper(t *testing.T) {
	requireVM(t)
	requireEngine(t, "script")
	e := startPodman(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "bulwark-vm")
	mustBW(t, "install", "--config", filepath.Join(dir, "containers.conf"), "--binary", bulwarkBin, "--vm", "--vm-wrapper", wrapper, "podman")
	global := append([]string{}, e.global...)
	for i := range global {
		if global[i] == "--runtime" && i+1 < len(global) {
			global[i+1] = wrapper
		}
	}
	name := fmt.Sprintf("bwe-vm-%d", os.Getpid())
	args := append(append([]string{}, global...), "run", "--rm", "--name", name)
	args = append(append(args, e.runFlags...), e.image, "sh", "-c", guestWaits)
	run := startAsync(t, e.bin, args...)
	t.Cleanup(func() {
		exec.Command(e.bin, append(append([]string{}, global...), "rm", "-f", "-t", "0", name)...).Run()
	})
	waitOutput(t, run, "kernel=", 180*time.Second)
	tty := runCmd(t, nil, "script", "-qefc", shellQuote(append(append([]string{e.bin}, global...), "exec", "-t", name, "sh", "-c", guestExecTTY)), "/dev/null")
	checkGuestExecTTY(t, "podman exec -t", tty)
	if r := runCmd(t, nil, e.bin, append(append([]string{}, global...), "exec", name, "touch", "/go")...); r.code != 0 {
		t.Fatalf("podman exec touch /go: %v", r)
	}
	r := waitDone(t, run, 120*time.Second)
	t.Logf("podman run with the bulwark-vm wrapper: %v", r)
	checkRunOnGuest(t, "podman run", r)
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived podman run --rm: %v", ps)
	}
}

// TestCtrRunsTheBulwarkVMWrapper: containerd's runc shim runs the wrapper
// `bulwark install containerd --vm` writes as its runc binary, and `ctr
// run` gets the payload's output and status from a guest whose kernel is
// not the host's; `ctr task exec -t` into it gets a pty of the guest and
// the exec'd process's status; nothing of QEMU is left after --rm.
func TestCtrRunsTheBulwarkVMWrapper(t *testing.T) {
	requireVM(t)
	requireEngine(t, "script")
	e := startContainerd(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "bulwark-vm")
	mustBW(t, "install", "--config", filepath.Join(dir, "config.toml"), "--binary", bulwarkBin, "--vm", "--vm-wrapper", wrapper, "containerd")
	id := e.id(t)
	run := startAsync(t, "ctr", e.args("run", "--rm", "--runtime", "io.containerd.runc.v2", "--runc-binary", wrapper, "--runc-root", e.runcRoot,
		e.image, id, "sh", "-c", guestWaits)...)
	t.Cleanup(func() {
		exec.Command("ctr", e.args("task", "kill", "-s", "SIGKILL", id)...).Run()
		waitFor(10*time.Second, func() bool { return exec.Command("ctr", e.args("task", "delete", id)...).Run() == nil })
		exec.Command("ctr", e.args("container", "rm", id)...).Run()
	})
	waitOutput(t, run, "kernel=", 180*time.Second)
	tty := runCmd(t, nil, "script", "-qefc", shellQuote(append([]string{"ctr"}, e.args("task", "exec", "-t", "--exec-id", "tty1", id, "sh", "-c", guestExecTTY)...)), "/dev/null")
	checkGuestExecTTY(t, "ctr task exec -t", tty)
	e.ok(t, "task", "exec", "--exec-id", "go", id, "touch", "/go")
	r := waitDone(t, run, 120*time.Second)
	t.Logf("ctr run with the bulwark-vm wrapper: %v", r)
	checkRunOnGuest(t, "ctr run", r)
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived ctr run --rm: %v", ps)
	}
}

// TestDockerRunRuntimeBulwarkVMOnABridgeNetwork: `docker run --runtime
// bulwark-vm` on a Docker bridge network (a network of the test's own, as
// the daemon runs without its default bridge and without iptables here)
// gives the guest the container's interface: the guest fetches a page
// from a listener on the bridge's host address, and the host reaches a
// listener in the guest at the container's address and through a
// published port (Docker's userland proxy), whose answer names the
// guest's kernel, not the host's. On this user-defined network the
// container's resolv.conf names Docker's embedded DNS server, 127.0.0.11,
// which lives in the container's network namespace behind a DNAT rule,
// not in the guest: the guest still resolves a runc container's name on
// the network, over UDP and over TCP (pkg/vmdns), as the runc container
// next to it does, and a name the embedded server asks the daemon's
// upstream nameserver for (from the container's namespace, through the
// container's interface: pkg/vmnet keeps those answers there).
func TestDockerRunRuntimeBulwarkVMOnABridgeNetwork(t *testing.T) {
	if k, err := vm.FindKernel(); err != nil || !k.NIC {
		t.Skipf("the guest kernel (%+v, %v) has no virtio-net driver: rebuild the minimal kernel with scripts/build-vm-kernel.sh", k, err)
	}
	// The daemon's upstream nameserver is one this test serves on the
	// bridge's host address.
	v := startVMDocker(t, "docker-vmnet", "{\"dns\": [\"10.77.7.1\"]}\n")
	docker := v.docker
	const netName, bridge, gw = "bwe-vmnet", "bwe-vmnet0", "10.77.7.1"
	if r := docker("network", "create", "-d", "bridge", "-o", "com.docker.network.bridge.name="+bridge,
		"--subnet", "10.77.7.0/24", "--gateway", gw, netName); r.code != 0 {
		t.Fatalf("docker network create: %v", r)
	}
	defer docker("network", "rm", netName)
	upstream := serveUpstreamDNS(t, gw+":53", "upstream.example", "10.9.9.9")

	l, err := net.Listen("tcp4", gw+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "from-the-host") }))
	}()
	const peer = "bwe-vmnet-peer"
	if r := docker("run", "-d", "--name", peer, "--network", netName, "bwtest:1", "sleep", "600"); r.code != 0 {
		t.Fatalf("docker run -d (runc) %s: %v", peer, r)
	}
	defer docker("rm", "-f", peer)
	peerIP := strings.TrimSpace(docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", peer).stdout)
	lookups := fmt.Sprintf("/usr/local/bin/netprobe dns %s udp; /usr/local/bin/netprobe dns %s tcp; /usr/local/bin/netprobe dns upstream.example udp", peer, peer)
	wantDNS := []string{fmt.Sprintf("dns udp %s [%s]", peer, peerIP), fmt.Sprintf("dns tcp %s [%s]", peer, peerIP), "dns udp upstream.example [10.9.9.9]"}
	if r := docker("run", "--rm", "--network", netName, "bwtest:1", "sh", "-c", lookups); !strings.Contains(r.stdout, wantDNS[0]) || !strings.Contains(r.stdout, wantDNS[2]) {
		t.Errorf("a runc container on %s does not resolve %s and upstream.example through Docker's embedded server either: %v", netName, peer, r)
	}
	runcQueries := upstream.Load()

	hostRelease := hostKernel()
	const name, published = "bwe-vmnet", 18193
	r := docker("run", "-d", "--name", name, "--runtime", "bulwark-vm", "--network", netName,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", published), "bwtest:1", "sh", "-c",
		fmt.Sprintf("echo fetched=$(/usr/local/bin/netprobe get http://%s/); %s; exec /usr/local/bin/netprobe serve 8080 99", l.Addr(), lookups))
	if r.code != 0 {
		t.Fatalf("docker run -d --runtime bulwark-vm --network %s: %v", netName, r)
	}
	defer docker("rm", "-f", name)
	var logs result
	if !waitFor(240*time.Second, func() bool {
		logs = docker("logs", name)
		return strings.Contains(logs.stdout, "listening")
	}) {
		t.Fatalf("the guest's listener did not start within 240 s: %v", logs)
	}
	if !strings.Contains(logs.stdout, "fetched=from-the-host") {
		t.Errorf("the guest did not reach the host's listener at %s: %q", l.Addr(), logs.stdout)
	}
	for _, w := range wantDNS {
		if !strings.Contains(logs.stdout, w) {
			t.Errorf("the guest did not resolve through 127.0.0.11: want %q in %q", w, logs.stdout)
		}
	}
	if n := upstream.Load(); n <= runcQueries {
		t.Errorf("the upstream nameserver saw no query for the VM container (%d before it, %d after)", runcQueries, n)
	}
	ip := strings.TrimSpace(docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).stdout)
	for _, url := range []string{fmt.Sprintf("http://%s:8080/", ip), fmt.Sprintf("http://127.0.0.1:%d/", published)} {
		c := http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := string(b); !strings.HasPrefix(got, "kernel=") || got == "kernel="+hostRelease {
			t.Errorf("GET %s answered %q; want the guest's kernel, not the host's %s", url, got, hostRelease)
		}
	}
	if r := docker("rm", "-f", name); r.code != 0 {
		t.Fatalf("docker rm -f: %v", r)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived docker rm: %v", ps)
	}
}

// serveUpstreamDNS answers A queries for name with addr over UDP on
// listen, for the test's lifetime, and counts the queries it gets.
func serveUpstreamDNS(t *testing.T, listen, name, addr string) *atomic.Int64 {
	t.Helper()
	pc, err := net.ListenPacket("udp4", listen)
	if err != nil {
		t.Fatalf("upstream nameserver on %s: %v", listen, err)
	}
	t.Cleanup(func() { pc.Close() })
	ip := net.ParseIP(addr).To4()
	n := new(atomic.Int64)
	go func() {
		buf := make([]byte, 65535)
		for {
			m, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			n.Add(1)
			q := buf[:m]
			end := 12
			var labels []string
			for end < len(q) && q[end] != 0 && end+1+int(q[end]) <= len(q) {
				labels = append(labels, string(q[end+1:end+1+int(q[end])]))
				end += 1 + int(q[end])
			}
			end += 5
			if m < 12 || end > m {
				continue
			}
			r := append([]byte(nil), q[:end]...)
			r[2], r[3] = 0x81, 0x80
			r[6], r[7], r[8], r[9], r[10], r[11] = 0, 0, 0, 0, 0, 0
			if strings.Join(labels, ".") == name {
				r[7] = 1
				r = append(r, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ip[0], ip[1], ip[2], ip[3])
			} else {
				r[3] |= 3
			}
			pc.WriteTo(r, from)
		}
	}()
	return n
}
