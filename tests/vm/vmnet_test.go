package vm

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/pkg/network"
	vmpkg "github.com/bulwark-sec/bulwark/pkg/vm"
)

// The tests below prove the guest's NIC: the container's interface on a
// bridge network carried transparently into the guest (pkg/vmnet).

// needBridge skips where the bridge network cannot be made here.
func needBridge(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		if _, err := os.Stat(filepath.Join(network.PluginPath[0], p)); err != nil {
			t.Skipf("CNI plugin %s not installed (apt-get install containernetworking-plugins): %v", p, err)
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
}

// needNICKernel skips, saying why, when the guest kernel this run boots
// cannot drive a virtio-net device.
func needNICKernel(t *testing.T) {
	t.Helper()
	k, err := vmpkg.FindKernel()
	if err != nil {
		t.Skip(err)
	}
	if !k.NIC {
		t.Skipf("the guest kernel %s has no virtio-net driver (rebuild the minimal kernel with scripts/build-vm-kernel.sh, or BULWARK_VM_KERNEL=/boot/vmlinuz-*)", k.Path)
	}
}

func hostRelease(t *testing.T) string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return int8sToString(u.Release[:])
}

// inNetns runs a command in the network namespace at path.
func inNetns(path string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestIsolationVMBridgeNetworkReachesTheGuest: a VM container on `--net
// bridge` with a published port. The guest's eth0 has the container
// interface's MAC and address; the guest fetches a page from a listener
// this test runs on the host; the host reaches a listener in the guest at
// the container's address and through the published port, and the answer
// names the guest's kernel, not the host's, so the connection provably
// went to the guest. QEMU holds no CAP_NET_ADMIN; the tap and both
// redirects are in the container's network namespace. QEMU is then
// SIGKILLed: the run ends, and the namespace (with the tap and filters),
// the network record and every VM leftover are gone.
func TestIsolationVMBridgeNetworkReachesTheGuest(t *testing.T) {
	needVM(t)
	needNICKernel(t)
	needBridge(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	root := t.TempDir()
	before := vmLeftovers(t)

	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "host-%s", token)
		}))
	}()
	hostPort := l.Addr().(*net.TCPAddr).Port
	const published = 18191
	// The default bridge network's gateway is the host's address on it.
	gw := "10.89.0.1"

	id := "vmnet-" + token
	script := fmt.Sprintf(`echo "kernel=$(uname -r)"; echo "nics=$(ls /sys/class/net | tr '\n' ' ')"; `+
		`echo "mac=$(cat /sys/class/net/eth0/address)"; echo "addr=$(/usr/local/bin/netprobe addr eth0)"; `+
		`echo "fetched=$(/usr/local/bin/netprobe get http://%s:%d/)"; exec /usr/local/bin/netprobe serve 8080 99`, gw, hostPort)
	cmd := exec.Command(bin, "--root", root, "run", "--isolation", "vm", "--name", id, "--net", "bridge",
		"-p", fmt.Sprintf("%d:8080", published), rootfs, "--", "sh", "-c", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	finished := false
	defer func() {
		if !finished {
			_ = cmd.Process.Kill()
			<-done
			_ = exec.Command(bin, "--root", root, "delete", "--force", id).Run()
		}
		b, _ := os.ReadFile(errf.Name())
		t.Logf("stderr: %s", b)
	}()
	lines := make(chan string, 32)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	kernel := strings.TrimPrefix(lineWith(t, lines, "kernel=", 240*time.Second), "kernel=")
	if kernel == "" || kernel == hostRelease(t) {
		t.Fatalf("the payload runs on kernel %q, the host's is %q: not in a guest", kernel, hostRelease(t))
	}
	nics := lineWith(t, lines, "nics=", 30*time.Second)
	mac := strings.TrimPrefix(lineWith(t, lines, "mac=", 30*time.Second), "mac=")
	addr := lineWith(t, lines, "addr=", 30*time.Second)
	fetched := lineWith(t, lines, "fetched=", 60*time.Second)
	lineWith(t, lines, "listening", 30*time.Second)

	ip := recordIP(t, root, id)
	ns := network.NetnsPath(root, id)
	link, err := inNetns(ns, "ip", "-o", "link", "show")
	if err != nil {
		t.Fatalf("ip link in the container's namespace: %v\n%s", err, link)
	}
	t.Logf("the container's namespace:\n%s", link)
	m := regexp.MustCompile(`\d+: eth0@\S+ .* link/ether ([0-9a-f:]+)`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no eth0 in the container's namespace:\n%s", link)
	}
	if mac != m[1] {
		t.Errorf("the guest's eth0 has MAC %s, the container's interface %s", mac, m[1])
	}
	if !strings.Contains(addr, ip+" "+m[1]) {
		t.Errorf("the guest's eth0: %q, want the container's address %s with MAC %s (guest NICs: %s)", addr, ip, m[1], nics)
	}
	if want := "fetched=host-" + token; fetched != want {
		t.Errorf("the guest fetched %q from the host's listener at %s:%d, want %q", fetched, gw, hostPort, want)
	}
	if !strings.Contains(link, "vmtap") {
		t.Errorf("no tap in the container's network namespace:\n%s", link)
	}
	for _, dev := range []string{"eth0", tapName(link)} {
		if f, err := inNetns(ns, "tc", "filter", "show", "dev", dev, "ingress"); err != nil || !strings.Contains(f, "mirred") || !strings.Contains(f, "Redirect") {
			t.Errorf("ingress filters of %s: %v\n%s\nwant a mirred redirect", dev, err, f)
		}
	}
	qemu := descendant(cmd.Process.Pid, "qemu-system")
	if qemu == 0 {
		t.Fatal("no QEMU below bulwark run")
	}
	capEff, _ := strconv.ParseUint(procLine(t, qemu, "status", "CapEff:"), 16, 64)
	if capEff&(1<<12) != 0 {
		t.Errorf("QEMU holds CAP_NET_ADMIN (CapEff %x)", capEff)
	}

	want := "kernel=" + kernel
	for _, url := range []string{fmt.Sprintf("http://%s:8080/", ip), fmt.Sprintf("http://127.0.0.1:%d/", published)} {
		got, err := get(url)
		if err != nil || got != want {
			t.Errorf("GET %s from the host: %q, %v; want the guest's %q", url, got, err, want)
		}
	}

	// QEMU killed: the run ends and takes the network with it.
	if err := syscall.Kill(qemu, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		finished = true
		if err == nil {
			t.Error("bulwark run exited 0 after QEMU was killed")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("bulwark run did not end within 60 s of QEMU's SIGKILL")
	}
	for range lines {
	}
	for _, p := range []string{ns, network.RecordPath(root, id)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), "vmtap") {
		t.Errorf("a tap reached the host's namespace:\n%s", out)
	}
	requireVMClean(t, before)
}

// tapName picks the vmtap link's name out of `ip -o link show`.
func tapName(links string) string {
	m := regexp.MustCompile(`\d+: (vmtap\d+)`).FindStringSubmatch(links)
	if m == nil {
		return "vmtap-missing"
	}
	return m[1]
}

func recordIP(t *testing.T, root, id string) string {
	t.Helper()
	b, err := os.ReadFile(network.RecordPath(root, id))
	if err != nil {
		t.Fatalf("network record of %s: %v", id, err)
	}
	m := regexp.MustCompile(`"ip":"([0-9.]+)"`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no ip in the record of %s: %s", id, b)
	}
	return m[1]
}

func get(url string) (string, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestIsolationVMNetworkWithoutAGuestDriverFailsClearly: a container with
// an interface, whose guest kernel has no virtio-net driver, is refused
// before the boot, naming the interface and the kernel, instead of
// running without its network; nothing is left (namespace, record, VM
// leftovers).
func TestIsolationVMNetworkWithoutAGuestDriverFailsClearly(t *testing.T) {
	needVM(t)
	needBridge(t)
	src := vmpkg.MinimalKernel
	cfg, err := os.ReadFile(filepath.Join(filepath.Dir(src), "config"))
	if err != nil {
		t.Skipf("needs the minimal kernel (scripts/build-vm-kernel.sh) to make one without virtio-net: %v", err)
	}
	// The same kernel, its config saying it has no virtio-net: what the
	// runtime decides by.
	dir := t.TempDir()
	if err := os.Symlink(src, filepath.Join(dir, "vmlinux")); err != nil {
		t.Fatal(err)
	}
	cfg = regexp.MustCompile(`(?m)^CONFIG_VIRTIO_NET=y\n`).ReplaceAll(cfg, nil)
	if err := os.WriteFile(filepath.Join(dir, "config"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := vmLeftovers(t)
	id := "vmnet-nodrv-" + strconv.Itoa(os.Getpid())
	r := runVM(t, bin, []string{"BULWARK_VM_KERNEL=" + filepath.Join(dir, "vmlinux")}, "--name", id, "--net", "bridge", rootfs, "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "no virtio-net driver") || !strings.Contains(r.stderr, "eth0") {
		t.Errorf("exit %d, stderr %q; want a failure naming eth0 and the missing virtio-net driver", r.code, r.stderr)
	}
	for _, p := range []string{network.NetnsPath("/run/bulwark", id), network.RecordPath("/run/bulwark", id)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
	requireVMClean(t, before)
}
