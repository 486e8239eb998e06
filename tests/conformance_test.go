package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unpassable are the runtime-tools tests no runtime can pass on this kind of
// host; conformance/README.md gives the reason for each.
var unpassable = map[string]bool{
	"hooks": true, "prestart": true, "pidfile": true, "misc_props": true, "process_rlimits": true, "start": true,
	"linux_cgroups_blkio": true, "linux_cgroups_relative_blkio": true,
	"linux_cgroups_network": true, "linux_cgroups_relative_network": true,
	"linux_cgroups_memory": true, "linux_cgroups_relative_memory": true,
	"linux_process_apparmor_profile": true, "process_capabilities": true,
}

// TestConformanceSuite runs the OCI runtime-tools validation suite against
// this build through conformance/run.sh (about a minute for bulwark alone,
// plus building the suite) and requires every passable test to pass. It
// needs the module proxy for the suite's source, so it only runs when
// BULWARK_CONFORMANCE=1.
func TestConformanceSuite(t *testing.T) {
	if os.Getenv("BULWARK_CONFORMANCE") != "1" {
		t.Skip("set BULWARK_CONFORMANCE=1 to run the runtime-tools validation suite (conformance/run.sh)")
	}
	out := t.TempDir()
	cmd := exec.Command("../conformance/run.sh", "bulwark")
	cmd.Env = append(os.Environ(), "BULWARK="+bulwarkBin, "CONFORMANCE_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("conformance/run.sh: %v\n%s", err, b)
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, l := range strings.Split(string(md), "\n") {
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		if len(cells) != 2 || cells[0] == "test" || strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[0], "**") {
			continue
		}
		seen++
		name, got := cells[0], cells[1]
		if unpassable[name] {
			continue
		}
		if why, ok := strings.CutPrefix(got, "skip: "); ok {
			// conformance/run.sh found the host lacking what the test needs.
			t.Logf("%s: skipped: %s", name, why)
			continue
		}
		if got != "pass" {
			tap, _ := os.ReadFile(filepath.Join(out, "tap", "bulwark", name+".tap"))
			stderr, _ := os.ReadFile(filepath.Join(out, "tap", "bulwark", name+".tap.stderr"))
			t.Errorf("%s: %s\n%s\n%s", name, got, tap, stderr)
		}
	}
	if seen != 58 {
		t.Fatalf("results.md lists %d tests, want the suite's 58:\n%s", seen, md)
	}
}
