package cri

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBulwarkPodNextToRuncPod runs one pod per handler on the same
// containerd: each handler's runtime keeps its own pod's state, both pods
// get an address on the bridge, and each reaches the other across it.
func TestBulwarkPodNextToRuncPod(t *testing.T) {
	d := sharedDaemon(t)
	ids := map[string][2]string{}
	for _, h := range []string{"runc", "bulwark"} {
		podJSON := d.newPod(t, h, nil)
		pod := d.runPod(t, h, podJSON)
		c := d.startContainer(t, pod, podJSON, ctrConfig("web", 0, []string{"/usr/local/bin/httpd", "-addr", "0.0.0.0:8080"}, nil))
		assertRunBy(t, h, pod, c)
		ids[h] = [2]string{pod, c}
	}
	ip := func(pod string) string {
		s, _ := field(d.inspect(t, "inspectp", pod), "status", "network", "ip").(string)
		if !strings.HasPrefix(s, "10.237.77.") {
			t.Fatalf("pod %s has address %q, want one in %s", pod, s, subnet)
		}
		return s
	}
	for from, to := range map[string]string{"runc": "bulwark", "bulwark": "runc"} {
		url := "http://" + ip(ids[to][0]) + ":8080/"
		var r result
		if !waitFor(20*time.Second, func() bool {
			r = d.crictl(t, "exec", "-s", ids[from][1], "wget", "-qO-", url)
			return strings.TrimSpace(r.stdout) == "ok"
		}) {
			t.Errorf("%s pod could not reach the %s pod at %s: %v", from, to, url, r)
		}
	}
}

// TestHardenedHandlerAppliesTheFloor compares a container's capabilities
// under the two handlers `bulwark install --harden` registers: the floor
// drops NET_RAW, which containerd's default set has, from the container's
// own process and from a process exec'd into it (kubectl exec), whose
// process.json containerd builds with its own default set.
func TestHardenedHandlerAppliesTheFloor(t *testing.T) {
	d := sharedDaemon(t)
	capEff, execEff := map[string]string{}, map[string]string{}
	for _, h := range []string{"bulwark", "bulwark-hardened"} {
		podJSON := d.newPod(t, h, nil)
		pod := d.runPod(t, h, podJSON)
		c := d.startContainer(t, pod, podJSON, ctrConfig("caps", 0, []string{"sh", "-c", "grep CapEff /proc/self/status; exec sleep 100000"}, nil))
		assertRunByBulwark(t, d, c)
		var line string
		waitFor(10*time.Second, func() bool {
			line = strings.TrimSpace(d.crictl(t, "logs", c).stdout)
			return strings.HasPrefix(line, "CapEff:")
		})
		if f := strings.Fields(line); len(f) == 2 {
			capEff[h] = f[1]
		} else {
			t.Fatalf("handler %s: no CapEff line in the container's log: %q", h, line)
		}
		if f := strings.Fields(d.ok(t, "exec", "-s", c, "grep", "CapEff", "/proc/self/status")); len(f) == 2 {
			execEff[h] = f[1]
		}
	}
	if !hasNetRaw(capEff["bulwark"]) || hasNetRaw(capEff["bulwark-hardened"]) {
		t.Errorf("want NET_RAW under bulwark and not under bulwark-hardened: CapEff %v", capEff)
	}
	if !hasNetRaw(execEff["bulwark"]) || hasNetRaw(execEff["bulwark-hardened"]) {
		t.Errorf("exec: want NET_RAW under bulwark and not under bulwark-hardened: CapEff %v", execEff)
	}
}

// hasNetRaw reads a CapEff hex mask.
func hasNetRaw(hex string) bool {
	v, err := strconv.ParseUint(hex, 16, 64)
	return err == nil && v&(1<<13) != 0
}
