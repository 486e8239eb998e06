package engines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireVM skips when this host cannot boot a VM container: no QEMU or
// no readable guest kernel (scripts/install-vm.sh installs both).
func requireVM(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 not installed (scripts/install-vm.sh):", err)
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 && os.Getenv("BULWARK_VM_KERNEL") == "" {
		t.Skip("no guest kernel in /boot (scripts/install-vm.sh installs linux-image-amd64)")
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
	requireEngine(t, "dockerd", dockerBin, "containerd", "containerd-shim-runc-v2")
	requireVM(t)
	dir := filepath.Join(workDir, "docker-vm")
	os.MkdirAll(dir, 0o700)
	cfg := filepath.Join(dir, "daemon.json")
	const orig = "{\"max-concurrent-downloads\": 2}\n"
	os.WriteFile(cfg, []byte(orig), 0o644)
	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--vm", "docker")
	d, err := startDockerd(dir, "--config-file", cfg)
	if err != nil {
		t.Fatalf("dockerd refused the installed daemon.json: %v", err)
	}
	defer d.stop()
	docker := func(args ...string) result {
		return runCmd(t, nil, dockerBin, append([]string{"-H", "unix://" + d.sock}, args...)...)
	}
	if r := docker("import", rootfsTarball(t), "bwtest:1"); r.code != 0 {
		t.Fatalf("docker import: %v", r)
	}
	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
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

// qemuProcesses lists the QEMU processes running now: the VM tests hold
// the host's QEMU lock, so any is one of theirs.
func qemuProcesses() []string {
	var out []string
	ps, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil || !strings.HasPrefix(string(b), "qemu-system") {
			continue
		}
		out = append(out, filepath.Dir(p))
	}
	return out
}

// TestPodmanRunsTheBulwarkVMWrapper: the wrapper `bulwark install podman
// --vm` writes is a runtime podman runs a container in a VM with.
func TestPodmanRunsTheBulwarkVMWrapper(t *testing.T) {
	requireVM(t)
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
	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	args := append(global, "run", "--rm")
	args = append(append(args, e.runFlags...), e.image, "sh", "-c", "echo kernel=$(uname -r); exit 3")
	r := runCmd(t, nil, e.bin, args...)
	t.Logf("podman run with the bulwark-vm wrapper: %v", r)
	if r.code != 3 || !strings.Contains(r.stdout, "kernel=") || strings.Contains(r.stdout, "kernel="+hostRelease) {
		t.Fatalf("exit %d, stdout %q: want 3 and the guest's kernel, not the host's %s", r.code, r.stdout, hostRelease)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived podman run --rm: %v", ps)
	}
}

// TestCtrRunsTheBulwarkVMWrapper: containerd's runc shim runs the wrapper
// `bulwark install containerd --vm` writes as its runc binary (what a
// RuntimeClass handler bulwark-vm selects through the CRI), and `ctr run`
// gets the payload's output and status from a guest whose kernel is not
// the host's; nothing of QEMU is left after --rm.
func TestCtrRunsTheBulwarkVMWrapper(t *testing.T) {
	requireVM(t)
	e := startContainerd(t)
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "bulwark-vm")
	mustBW(t, "install", "--config", filepath.Join(dir, "config.toml"), "--binary", bulwarkBin, "--vm", "--vm-wrapper", wrapper, "containerd")
	var host unix.Utsname
	unix.Uname(&host)
	hostRelease := unix.ByteSliceToString(host.Release[:])
	r := e.do(t, "run", "--rm", "--runtime", "io.containerd.runc.v2", "--runc-binary", wrapper, "--runc-root", e.runcRoot,
		e.image, e.id(t), "sh", "-c", "echo kernel=$(uname -r); exit 3")
	t.Logf("ctr run with the bulwark-vm wrapper: %v", r)
	if r.code != 3 || !strings.Contains(r.stdout, "kernel=") || strings.Contains(r.stdout, "kernel="+hostRelease) {
		t.Fatalf("exit %d, stdout %q: want 3 and the guest's kernel, not the host's %s", r.code, r.stdout, hostRelease)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived ctr run --rm: %v", ps)
	}
}
