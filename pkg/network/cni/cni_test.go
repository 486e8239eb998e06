package cni

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// host-local alone allocates and releases an address without touching
// the host's links or rules: it runs the plugin exec path for real.
func TestAddAndDelRunThePlugins(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/host-local"); err != nil {
		t.Skipf("containernetworking-plugins not installed: %v", err)
	}
	dir := t.TempDir()
	list := func(subnet string) json.RawMessage {
		return json.RawMessage(`{"cniVersion": "1.0.0", "name": "bwtunit", "plugins": [{"type": "host-local",
			"ipam": {"type": "host-local", "ranges": [[{"subnet": "` + subnet + `"}]], "dataDir": "` + dir + `"}}]}`)
	}
	c := Call{List: list("10.89.251.0/24"), ContainerID: "bwtunit", Netns: "/proc/self/ns/net", IfName: "eth0",
		PluginPath: []string{"/usr/lib/cni"}, CacheDir: filepath.Join(dir, "cache")}
	r, err := Add(context.Background(), c)
	if err != nil || !strings.HasPrefix(r.IP, "10.89.251.") {
		t.Fatalf("Add = %+v, %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bwtunit", r.IP)); err != nil {
		t.Errorf("no lease for %s: %v", r.IP, err)
	}
	if err := Del(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bwtunit", r.IP)); err == nil {
		t.Errorf("lease for %s left after Del", r.IP)
	}
	// A plugin's own error comes back as its message.
	c.List = list("not-a-subnet")
	if _, err := Add(context.Background(), c); err == nil || !strings.Contains(err.Error(), "not-a-subnet") {
		t.Errorf("Add with a bad subnet = %v, want the plugin's error naming it", err)
	}
	c.PluginPath = []string{dir}
	if _, err := Add(context.Background(), c); err == nil || !strings.Contains(err.Error(), `failed to find plugin "host-local"`) {
		t.Errorf("Add without the plugin = %v", err)
	}
}
