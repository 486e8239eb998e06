package cri

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// usernsPod asks for a pod user namespace as the kubelet does for
// hostUsers: false: mode POD with the uid and gid maps it picked.
func usernsPod() map[string]any {
	m := []map[string]any{{"host_id": 1 << 20, "container_id": 0, "length": 65536}}
	return map[string]any{"security_context": map[string]any{
		"namespace_options": map[string]any{"userns_options": map[string]any{"mode": 0, "uids": m, "gids": m}},
	}}
}

// TestPodUserNamespace runs a pod with hostUsers: false, as the kubelet
// asks for it: the CRI's userns options, mode POD, with the maps it picked.
// Debian 12's containerd 1.6 was built against a CRI API without the field
// and drops it, so the pod runs in the host's user namespace whatever the
// runtime. The test checks that, so that a containerd that starts passing
// the field on is noticed (docs/kubernetes.md says what 1.7 does).
func TestPodUserNamespace(t *testing.T) {
	d := sharedDaemon(t)
	linux := usernsPod()
	podJSON := d.newPod(t, "userns", linux)
	pod := d.runPod(t, "bulwark", podJSON)
	c := d.startContainer(t, pod, podJSON, ctrConfig("id", 0, []string{"sleep", "100000"}, linux))
	if uidMap := strings.Join(strings.Fields(d.ok(t, "exec", "-s", c, "cat", "/proc/self/uid_map")), " "); uidMap != "0 0 4294967295" {
		t.Errorf("containerd 1.6 passed the pod's user namespace on (uid_map %q): update this test and docs/kubernetes.md", uidMap)
	}
}

// containerd17Version is what scripts/install-cri.sh containerd-1.7 builds.
const containerd17Version = "v1.7.35"

var (
	cri17Once sync.Once
	cri17D    *daemon
	cri17Err  string
)

// containerd17 is a private containerd 1.7 (built by scripts/install-cri.sh
// containerd-1.7; the test skips without it) with the handlers of
// `bulwark install containerd`.
func containerd17(t *testing.T) *daemon {
	t.Helper()
	if os.Getenv("BULWARK_CRI17") == "" {
		t.Skip("containerd 1.7 runs in its own target: scripts/test.sh cri17 (BULWARK_CRI17=1)")
	}
	requireTools(t, crictlBin)
	dir, _ := filepath.Abs(filepath.Join("..", "..", "_build", "tools", "containerd@"+containerd17Version))
	if _, err := os.Stat(filepath.Join(dir, "containerd-shim-runc-v2")); err != nil {
		t.Skipf("containerd %s not built (scripts/install-cri.sh containerd-1.7; scripts/test.sh cri17): %v", containerd17Version, err)
	}
	cri17Once.Do(func() {
		d, err := startDaemon("crictl17", networkN(3), "runc", "", dir, false)
		if err != nil {
			cri17Err = err.Error()
			return
		}
		cri17D = d
	})
	if cri17D == nil {
		t.Fatalf("containerd %s's CRI is not usable: %s", containerd17Version, cri17Err)
	}
	return cri17D
}

// TestPodUserNamespaceContainerd17 runs a hostUsers: false pod through
// containerd 1.7, which passes the CRI's user namespace on: the sandbox
// gets a user namespace with the pod's maps, each container joins it, and
// the pod's /dev/shm, hostname, hosts and resolv.conf are bound from
// containerd's state directory, which only host root may traverse. The
// runtime opens those sources before the init enters the user namespace,
// as runc does; container root then uses them as the kubelet expects.
func TestPodUserNamespaceContainerd17(t *testing.T) {
	d := containerd17(t)
	vol := t.TempDir()
	os.Chmod(vol, 0o755)
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	linux := usernsPod()
	podJSON := d.newPod(t, "userns17", linux)
	pod := d.runPod(t, "bulwark", podJSON)
	cfg := ctrConfig("id", 0, []string{"sleep", "100000"}, linux)
	cfg["mounts"] = []map[string]any{{"container_path": "/data", "host_path": vol, "readonly": true}}
	c := d.startContainer(t, pod, podJSON, cfg)
	assertRunByBulwark(t, d, c)
	shm := filepath.Join(d.dir, "state", "io.containerd.grpc.v1.cri", "sandboxes", pod, "shm")
	if _, err := os.Stat(shm); err != nil {
		t.Fatalf("the pod's /dev/shm source: %v", err)
	}
	closed := ""
	for p := filepath.Dir(shm); p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			closed = p
		}
	}
	if closed == "" {
		t.Fatalf("every directory above the pod's /dev/shm source %s is open to other users; the case this test is about is gone", shm)
	}
	out := d.ok(t, "exec", "-s", c, "sh", "-c",
		`echo uid_map=$(cat /proc/self/uid_map); echo id=$(id -u); echo hostname=$(cat /etc/hostname); `+
			`echo shm > /dev/shm/x && echo shm=$(cat /dev/shm/x); echo resolv=$(test -r /etc/resolv.conf && echo ok); echo data=$(cat /data/f)`)
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			got[k] = v
		}
	}
	want := map[string]string{"uid_map": "0 1048576 65536", "id": "0", "shm": "shm", "resolv": "ok", "data": "from-host"}
	for k, v := range want {
		if strings.Join(strings.Fields(got[k]), " ") != v {
			t.Errorf("%s = %q, want %q (all: %q)", k, got[k], v, out)
		}
	}
	if !strings.HasPrefix(got["hostname"], "userns17-") {
		t.Errorf("/etc/hostname = %q, want the pod's", got["hostname"])
	}
}

// TestHardenedPodRunsInAUserNamespace runs a pod under bulwark-hardened
// with two containers and a hostPath volume, as an unmodified pod asks
// (no hostUsers, the pod's PID namespace shared). The floor gives the
// sandbox a user namespace and each container joins it: container root is
// an unprivileged host uid, the containers share one user namespace (so
// they can still act in the pod's IPC and PID namespaces), and what
// container root writes to the volume is root's on the host, through the
// idmapped volume. containerd keeps the bundles in a directory only host
// root may traverse; the container still reaches its rootfs.
func TestHardenedPodRunsInAUserNamespace(t *testing.T) {
	d := sharedDaemon(t)
	vol := t.TempDir()
	podJSON := d.newPod(t, "hardened-userns", nil)
	pod := d.runPod(t, "bulwark-hardened", podJSON)
	var ids []string
	for _, name := range []string{"writer", "reader"} {
		cfg := ctrConfig(name, 0, []string{"sleep", "100000"}, nil)
		cfg["mounts"] = []map[string]any{{"container_path": "/data", "host_path": vol}}
		ids = append(ids, d.startContainer(t, pod, podJSON, cfg))
	}
	assertRunByBulwark(t, d, ids...)

	for _, id := range ids {
		uidMap := strings.Fields(d.ok(t, "exec", "-s", id, "cat", "/proc/self/uid_map"))
		if len(uidMap) != 3 || uidMap[0] != "0" || uidMap[1] == "0" {
			t.Fatalf("container %s: uid_map %q, want container root mapped to an unprivileged host uid", id, uidMap)
		}
		pid := int(field(d.inspect(t, "inspect", id), "info", "pid").(float64))
		status, err := os.ReadFile(filepathJoinProc(pid, "status"))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] != uidMap[1] {
				t.Errorf("container %s: its process runs as host uid %s, want %s (container root through uid_map)", id, f[1], uidMap[1])
			}
		}
	}
	ns := func(id string) string { return d.ok(t, "exec", "-s", id, "readlink", "/proc/self/ns/user") }
	sandboxPid := int(field(d.inspect(t, "inspectp", pod), "info", "pid").(float64))
	sandboxNS, _ := os.Readlink(filepathJoinProc(sandboxPid, "ns/user"))
	hostNS, _ := os.Readlink("/proc/self/ns/user")
	if a, b := ns(ids[0]), ns(ids[1]); a != b || a != sandboxNS || a == hostNS {
		t.Errorf("user namespaces: writer %q, reader %q, sandbox %q, host %q: want the sandbox's, not the host's, in both", a, b, sandboxNS, hostNS)
	}

	d.ok(t, "exec", "-s", ids[0], "sh", "-c", "echo hi > /data/by-root && chown 0:0 /data/by-root")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(vol, "by-root"), &st); err != nil {
		t.Fatalf("the file container root wrote to the volume: %v", err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		t.Errorf("a file container root wrote to the hostPath volume is %d:%d on the host, want 0:0 (an idmapped volume)", st.Uid, st.Gid)
	}
	if out := d.ok(t, "exec", "-s", ids[1], "stat", "-c", "%u:%g", "/data/by-root"); out != "0:0" {
		t.Errorf("the other container sees the file as %s, want 0:0", out)
	}
}
