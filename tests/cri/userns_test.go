package cri

import (
	"strings"
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

// TestPodUserNamespace runs a pod with hostUsers: false. containerd 1.6
// carries the field in its CRI API but does not act on it (support came
// with containerd 1.7), so under 1.6 the container's root is the host's
// root whatever the runtime: the test says so and skips.
func TestPodUserNamespace(t *testing.T) {
	d := sharedDaemon(t)
	linux := usernsPod()
	podJSON := d.newPod(t, "userns", linux)
	pod := d.runPod(t, "bulwark", podJSON)
	c := d.startContainer(t, pod, podJSON, ctrConfig("id", 0, []string{"sleep", "100000"}, linux))
	uidMap := strings.Join(strings.Fields(d.ok(t, "exec", "-s", c, "cat", "/proc/self/uid_map")), " ")
	if uidMap == "0 0 4294967295" {
		t.Skipf("this containerd does not pass the pod's user namespace to the runtime (uid_map %q): hostUsers: false needs containerd 1.7 or later", uidMap)
	}
	if uidMap != "0 1048576 65536" {
		t.Fatalf("uid_map %q, want 0 1048576 65536", uidMap)
	}
}
