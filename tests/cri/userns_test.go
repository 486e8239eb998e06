package cri

import (
	"os"
	"path/filepath"
	"strings"
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
