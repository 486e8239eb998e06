package engines

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerRunBulwarkVMUnderTheFloor: `bulwark install docker --vm
// --harden` registers bulwark-vm under the hardening floor, whose user
// namespace a VM container now takes: `docker run --runtime bulwark-vm`
// runs the payload in the guest with QEMU as an unprivileged host uid (the
// floor's range, over Docker's overlay rootfs relayered on idmapped
// layers), and docker rm leaves no QEMU and nothing under
// /run/bulwark-floor.
func TestDockerRunBulwarkVMUnderTheFloor(t *testing.T) {
	d := startVMDocker(t, "docker-vm-floor", "{}\n", "--harden")
	docker, cfg := d.docker, d.cfg
	floorBefore, _ := filepath.Glob("/run/bulwark-floor/vm-*")
	const name = "bwe-vm-floor"
	r := docker("run", "-d", "--name", name, "--runtime", "bulwark-vm", "--network", "none", "-m", "512m", "bwtest:1",
		"sh", "-c", `echo "id=$(id -u)"; echo floor > /written-by-guest; echo started; while :; do sleep 1; done`)
	if r.code != 0 {
		t.Fatalf("docker run -d --runtime bulwark-vm under the floor: %v", r)
	}
	defer docker("rm", "-f", name)
	var logs result
	if !waitFor(180*time.Second, func() bool {
		logs = docker("logs", name)
		return strings.Contains(logs.stdout, "started")
	}) {
		t.Fatalf("the payload did not start within 180 s: %v", logs)
	}
	t.Logf("payload: %q", logs.stdout)
	if !strings.Contains(logs.stdout, "id=0") {
		t.Errorf("the payload's uid in the guest: %q, want 0", logs.stdout)
	}
	ps := qemuProcesses()
	if len(ps) == 0 {
		t.Fatal("no QEMU while the container runs")
	}
	for _, p := range ps {
		b, _ := os.ReadFile(filepath.Join(p, "status"))
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
				t.Logf("QEMU %s: host uid %s", p, f[1])
				if f[1] == "0" {
					t.Errorf("QEMU %s runs as host root under the floor", p)
				}
			}
		}
	}
	if r := docker("rm", "-f", name); r.code != 0 {
		t.Fatalf("docker rm -f: %v", r)
	}
	if ps := qemuProcesses(); len(ps) > 0 {
		t.Errorf("QEMU outlived docker rm: %v", ps)
	}
	if after, _ := filepath.Glob("/run/bulwark-floor/vm-*"); len(after) > len(floorBefore) {
		t.Errorf("left under /run/bulwark-floor: %v", after)
	}
	mustBW(t, "install", "--undo", "--config", cfg, "docker")
}
