package cri

import (
	"encoding/json"
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
)

// waitExited waits until the container has exited and returns its status.
func (d *daemon) waitExited(t *testing.T, id string) map[string]any {
	t.Helper()
	var st map[string]any
	if !waitFor(30*time.Second, func() bool {
		st = d.inspect(t, "inspect", id)
		return field(st, "status", "state") == "CONTAINER_EXITED"
	}) {
		t.Fatalf("container %s did not exit: %v", id, field(st, "status"))
	}
	return st
}

// TestContainerRestartsInTheSameSandbox does what the kubelet does when a
// container exits: a new attempt of the same container in the same pod,
// next to the exited one, in the same network namespace with the same
// address.
func TestContainerRestartsInTheSameSandbox(t *testing.T) {
	d := sharedDaemon(t)
	podJSON := d.newPod(t, "restart", nil)
	pod := d.runPod(t, "bulwark", podJSON)
	cmd := []string{"sh", "-c", "readlink /proc/self/ns/net; ip -4 -o addr show eth0 | awk '{print $4}'; exit 3"}
	first := d.startContainer(t, pod, podJSON, ctrConfig("app", 0, cmd, nil))
	st := d.waitExited(t, first)
	if code := field(st, "status", "exitCode"); code != float64(3) {
		t.Fatalf("first attempt exited %v, want 3", code)
	}
	second := d.startContainer(t, pod, podJSON, ctrConfig("app", 1, cmd, nil))
	d.waitExited(t, second)
	assertRunByBulwark(t, d, pod) // the attempts have exited; their runtime state is gone
	a, b := strings.TrimSpace(d.ok(t, "logs", first)), strings.TrimSpace(d.ok(t, "logs", second))
	if a == "" || a != b {
		t.Fatalf("attempts saw different namespaces or addresses:\nattempt 0: %q\nattempt 1: %q", a, b)
	}
	ip, _ := field(d.inspect(t, "inspectp", pod), "status", "network", "ip").(string)
	if !strings.Contains(b, ip+"/") {
		t.Errorf("attempt 1 has %q, the pod's address is %s", b, ip)
	}
	if n := len(strings.Fields(d.ok(t, "ps", "-a", "-q", "--pod", pod, "--name", "^app$"))); n != 2 {
		t.Errorf("want both attempts listed in the pod, got %d", n)
	}
}

// TestOOMKillReportedAsOOMKilled runs a process past its container's
// memory limit: the kernel kills it, and the CRI reports the reason the
// kubelet shows as OOMKilled.
func TestOOMKillReportedAsOOMKilled(t *testing.T) {
	d := sharedDaemon(t)
	podJSON := d.newPod(t, "oom", nil)
	pod := d.runPod(t, "bulwark", podJSON)
	c := d.startContainer(t, pod, podJSON, ctrConfig("bomb", 0, []string{"/usr/local/bin/membomb", "200"},
		map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 32 << 20}}))
	st := d.waitExited(t, c)
	if reason, code := field(st, "status", "reason"), field(st, "status", "exitCode"); reason != "OOMKilled" || code != float64(137) {
		t.Fatalf("membomb 200 MiB under a 32 MiB limit: reason %v, exit %v; want OOMKilled, 137", reason, code)
	}
}

// TestStatsReadFromTheContainersCgroup checks `crictl stats`: the CRI
// reads CPU and memory from the cgroup bulwark made for the container.
func TestStatsReadFromTheContainersCgroup(t *testing.T) {
	d := sharedDaemon(t)
	podJSON := d.newPod(t, "stats", nil)
	pod := d.runPod(t, "bulwark", podJSON)
	c := d.startContainer(t, pod, podJSON, ctrConfig("busy", 0,
		[]string{"sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exec sleep 100000"}, nil))
	var s struct {
		Stats []struct {
			CPU struct {
				UsageCoreNanoSeconds struct{ Value string } `json:"usageCoreNanoSeconds"`
			} `json:"cpu"`
			Memory struct {
				WorkingSetBytes struct{ Value string } `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"stats"`
	}
	var out string
	if !waitFor(30*time.Second, func() bool {
		out = d.ok(t, "stats", "-o", "json", "--id", c)
		if json.Unmarshal([]byte(out), &s) != nil || len(s.Stats) != 1 {
			return false
		}
		return nonZero(s.Stats[0].CPU.UsageCoreNanoSeconds.Value) && nonZero(s.Stats[0].Memory.WorkingSetBytes.Value)
	}) {
		t.Fatalf("crictl stats: want non-zero CPU and memory:\n%s", out)
	}
}

func nonZero(v string) bool { return v != "" && v != "0" }

// TestAttachAndPortForward covers the two other streams of containerd's
// stream server: attach to a container's stdin and stdout, and a port of
// the pod forwarded to the host's loopback.
func TestAttachAndPortForward(t *testing.T) {
	d := sharedDaemon(t)
	podJSON := d.newPod(t, "streams", nil)
	pod := d.runPod(t, "bulwark", podJSON)

	reader := ctrConfig("reader", 0, []string{"sh", "-c", "read line; echo got:$line"}, nil)
	reader["stdin"], reader["stdin_once"] = true, true
	c := d.startContainer(t, pod, podJSON, reader)
	r := runCmd(t, time.Minute, []byte("hello-attach\n"), crictlBin, "--config", d.crictlConfig, "attach", "-i", c)
	if !strings.Contains(r.stdout, "got:hello-attach") {
		t.Errorf("crictl attach -i: want the container to echo our line: %v", r)
	}

	d.startContainer(t, pod, podJSON, ctrConfig("web", 0, []string{"/usr/local/bin/httpd", "-addr", "127.0.0.1:8080"}, nil))
	port := freePort(t)
	pf := exec.Command(crictlBin, "--config", d.crictlConfig, "port-forward", pod, fmt.Sprintf("%d:8080", port))
	logf, _ := os.Create(filepath.Join(t.TempDir(), "pf.log"))
	pf.Stdout, pf.Stderr = logf, logf
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { pf.Process.Kill(); pf.Wait(); logf.Close() }()
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	if !waitFor(30*time.Second, func() bool {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return body == "ok"
	}) {
		l, _ := os.ReadFile(logf.Name())
		t.Fatalf("port-forward to the pod's 127.0.0.1:8080: got %q\n%s", body, l)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPodKilledMidStartLeavesNothing SIGKILLs bulwark while containerd
// has it create pod sandboxes: every failed pod is cleaned up (no runtime
// state the CRI does not know), and a pod runs afterwards.
func TestPodKilledMidStartLeavesNothing(t *testing.T) {
	d := sharedDaemon(t)
	stop := make(chan struct{})
	var kills atomic.Int64
	go killCreates(stop, &kills)
	failed := 0
	for i := 0; i < 6 && failed < 3; i++ {
		r := d.crictl(t, "runp", "--runtime", "bulwark", d.newPod(t, "killed", nil))
		if r.code != 0 {
			failed++
		} else {
			id := strings.TrimSpace(r.stdout)
			d.crictl(t, "stopp", id)
			d.crictl(t, "rmp", "-f", id)
		}
	}
	close(stop)
	if failed == 0 {
		t.Skipf("no create was killed in time (%d kills)", kills.Load())
	}
	known := map[string]bool{}
	for _, id := range strings.Fields(d.ok(t, "pods", "-q") + " " + d.ok(t, "ps", "-a", "-q")) {
		known[id] = true
	}
	for _, id := range bulwarkStatesOf(d.dir) {
		if !known[id] {
			t.Errorf("bulwark state of %s left after a killed create", id)
		}
	}
	podJSON := d.newPod(t, "after-kill", nil)
	pod := d.runPod(t, "bulwark", podJSON)
	c := d.startContainer(t, pod, podJSON, ctrConfig("ok", 0, []string{"sleep", "100000"}, nil))
	if out := d.ok(t, "exec", "-s", c, "echo", "alive"); out != "alive" {
		t.Fatalf("a pod after the killed creates does not run: %q", out)
	}
}

// killCreates SIGKILLs every `bulwark ... create` process until stop is
// closed, and counts the kills.
func killCreates(stop <-chan struct{}, kills *atomic.Int64) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		for _, pid := range processesWith(bulwarkBin, "\x00create\x00") {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				kills.Add(1)
			}
		}
		time.Sleep(time.Millisecond)
	}
}
