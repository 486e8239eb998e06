package cri

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podWithPrivatePIDs shares the pod's network and IPC namespaces (the
// kubelet's default) but gives each container its own PID namespace, so
// the test can tell shared from private namespaces apart. The kubelet sets
// it on the sandbox and on each container alike.
var podWithPrivatePIDs = map[string]any{"security_context": map[string]any{
	"namespace_options": map[string]any{"network": 0, "ipc": 0, "pid": 1},
}}

// TestPodContainersShareNetworkAndIPCUnderBulwark runs a bulwark pod with
// two containers: the second reaches the first's server on the pod's
// loopback, both are in the sandbox's network and IPC namespaces and not
// in each other's PID namespace; exec (streaming and -s), logs, stop and rm
// work as the kubelet drives them.
func TestPodContainersShareNetworkAndIPCUnderBulwark(t *testing.T) {
	d := sharedDaemon(t)
	podJSON := d.newPod(t, "shared", podWithPrivatePIDs)
	pod := d.runPod(t, "bulwark", podJSON)
	if h := field(d.inspect(t, "inspectp", pod), "info", "runtimeHandler"); h != "bulwark" {
		t.Fatalf("pod's runtime handler is %v, want bulwark", h)
	}
	server := d.startContainer(t, pod, podJSON, ctrConfig("server", 0,
		[]string{"sh", "-c", "echo server-started; exec /usr/local/bin/httpd -addr 127.0.0.1:8080"}, podWithPrivatePIDs))
	client := d.startContainer(t, pod, podJSON, ctrConfig("client", 0, []string{"sleep", "100000"}, podWithPrivatePIDs))
	assertRunByBulwark(t, d, server, client)

	// The client reaches the server on the pod's loopback.
	var got string
	if !waitFor(20*time.Second, func() bool {
		got = strings.TrimSpace(d.crictl(t, "exec", "-s", client, "wget", "-qO-", "http://127.0.0.1:8080/").stdout)
		return got == "ok"
	}) {
		t.Fatalf("client could not reach the server on the pod's loopback: %q", got)
	}

	// Namespaces: net and ipc shared with each other and with the sandbox
	// (the pause container), pid private.
	ns := func(id, kind string) string {
		return d.ok(t, "exec", "-s", id, "readlink", "/proc/self/ns/"+kind)
	}
	for _, kind := range []string{"net", "ipc"} {
		if a, b := ns(server, kind), ns(client, kind); a != b || a == "" {
			t.Errorf("%s namespace not shared: server %q, client %q", kind, a, b)
		}
	}
	if a, b := ns(server, "pid"), ns(client, "pid"); a == b {
		t.Errorf("pid namespace shared although the pod asked CONTAINER: %q", a)
	}
	sandboxPid := int(field(d.inspect(t, "inspectp", pod), "info", "pid").(float64))
	hostNet, _ := os.Readlink(filepathJoinProc(sandboxPid, "ns/net"))
	if c := ns(client, "net"); c != hostNet {
		t.Errorf("client's network namespace %q is not the sandbox's %q", c, hostNet)
	}
	// The pod's /dev/shm is one: POSIX shared memory made in one
	// container is seen in the other.
	d.ok(t, "exec", "-s", server, "sh", "-c", "echo from-server > /dev/shm/seg")
	if out := d.ok(t, "exec", "-s", client, "cat", "/dev/shm/seg"); out != "from-server" {
		t.Errorf("/dev/shm not shared: client reads %q", out)
	}

	// Streaming exec (through containerd's stream server) passes stdout
	// and the exit code; exec -s the same. crictl itself exits 1 and
	// names the process's code.
	r := d.crictl(t, "exec", client, "sh", "-c", "echo streamed; exit 7")
	if r.code == 0 || !strings.Contains(r.stdout, "streamed") || !strings.Contains(r.stderr, "exit code 7") {
		t.Errorf("crictl exec: want output and exit code 7: %v", r)
	}
	if out := d.ok(t, "exec", "-s", client, "sh", "-c", "echo synced"); out != "synced" {
		t.Errorf("crictl exec -s: output %q, want synced", out)
	}
	r = d.crictl(t, "exec", "-s", client, "sh", "-c", "exit 5")
	if r.code == 0 || !strings.Contains(r.stderr, "exited with 5") {
		t.Errorf("crictl exec -s: want exit 5: %v", r)
	}
	// Logs: the server's first line, through the CRI log file.
	if !waitFor(10*time.Second, func() bool { return strings.Contains(d.crictl(t, "logs", server).stdout, "server-started") }) {
		t.Errorf("crictl logs: no server-started: %v", d.crictl(t, "logs", server))
	}

	// stop and rm: the containers go, bulwark's state with them.
	for _, id := range []string{client, server} {
		d.ok(t, "stop", "--timeout", "5", id)
		if s := field(d.inspect(t, "inspect", id), "status", "state"); s != "CONTAINER_EXITED" {
			t.Errorf("after stop, %s is %v", id, s)
		}
		d.ok(t, "rm", id)
		if st := bulwarkState(id); st != "" {
			t.Errorf("bulwark state left after crictl rm: %s", st)
		}
	}
	d.ok(t, "stopp", pod)
	d.ok(t, "rmp", pod)
	if st := bulwarkState(pod); st != "" {
		t.Errorf("bulwark state of the sandbox left after rmp: %s", st)
	}
	if l := leftoverCgroups(pod); len(l) > 0 {
		t.Errorf("cgroups left after rmp: %v", l)
	}
}

func filepathJoinProc(pid int, rel string) string {
	return filepath.Join("/proc", itoa(pid), rel)
}
