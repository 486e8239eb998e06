package engines

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
// kernel with the memory limit as (less than) the guest's RAM, its output
// and exit status back through docker; --undo restores the config.
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
	r := docker("run", "--rm", "--runtime", "bulwark-vm", "--network", "none", "-m", "512m", "bwtest:1",
		"sh", "-c", "echo kernel=$(uname -r); grep MemTotal /proc/meminfo; echo to-stderr >&2; exit 7")
	t.Logf("docker run --runtime bulwark-vm: %v", r)
	if r.code != 7 {
		t.Fatalf("exit status %d, want the payload's 7: %v", r.code, r)
	}
	if !strings.Contains(r.stdout, "kernel=") || strings.Contains(r.stdout, "kernel="+hostRelease) {
		t.Errorf("the payload should run on the guest's kernel, not the host's %s: %q", hostRelease, r.stdout)
	}
	var memKB int64
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			memKB = atoi(f[1])
		}
	}
	if memKB == 0 || memKB > 512<<10 {
		t.Errorf("guest RAM %d kB, want under the 512 MiB limit (QEMU lives in it too)", memKB)
	}
	if !strings.Contains(r.stderr, "to-stderr") {
		t.Errorf("the payload's stderr did not come back: %q", r.stderr)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived docker run --rm: %v", ps)
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
