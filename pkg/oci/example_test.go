package oci

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestExampleMatchesRunc compares the templates with what the installed
// runc writes. Two differences are expected and normalised away: the
// ociVersion (runc's vendored spec is older), and the ambient capability set,
// which Debian's runc 1.1.5 fills but upstream runc's template (the one
// followed here) leaves empty.
func TestExampleMatchesRunc(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	tests := []struct {
		args []string
		ours *specs.Spec
	}{
		{[]string{"spec"}, Example()},
		{[]string{"spec", "--rootless"}, ExampleRootless()},
	}
	for _, tt := range tests {
		t.Run(tt.args[len(tt.args)-1], func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(runc, tt.args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("runc %v: %v: %s", tt.args, err, out)
			}
			data, err := os.ReadFile(filepath.Join(dir, ConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			var theirs map[string]any
			if err := json.Unmarshal(data, &theirs); err != nil {
				t.Fatal(err)
			}
			theirs["ociVersion"] = specs.Version
			caps := theirs["process"].(map[string]any)["capabilities"].(map[string]any)
			delete(caps, "ambient")

			var ours map[string]any
			if err := json.Unmarshal([]byte(mustJSON(t, tt.ours)), &ours); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ours, theirs) {
				t.Fatalf("template differs from runc %v:\nours   %s\ntheirs %s", tt.args, mustJSON(t, ours), mustJSON(t, theirs))
			}
		})
	}
}

func TestExampleFields(t *testing.T) {
	s := Example()
	if s.Version != specs.Version {
		t.Errorf("ociVersion = %q, want %q", s.Version, specs.Version)
	}
	if !s.Process.Terminal || !s.Process.NoNewPrivileges || !slices.Equal(s.Process.Args, []string{"sh"}) {
		t.Errorf("process = %+v", s.Process)
	}
	want := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	c := s.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "permitted": c.Permitted, "effective": c.Effective} {
		if !slices.Equal(set, want) {
			t.Errorf("%s = %v, want %v", name, set, want)
		}
	}
	if c.Ambient != nil || c.Inheritable != nil {
		t.Errorf("ambient/inheritable should be empty: %+v", c)
	}
	// The three sets must not alias: a caller editing one would edit all.
	c.Bounding[0] = "CAP_CHOWN"
	if c.Permitted[0] != "CAP_AUDIT_WRITE" {
		t.Error("capability sets share a backing array")
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	if !slices.Equal(dests, []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}) {
		t.Errorf("mounts = %v", dests)
	}
	wantNS := []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount"}
	if isCgroup2Unified() {
		wantNS = append(wantNS, "cgroup")
	}
	var gotNS []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		gotNS = append(gotNS, n.Type)
	}
	if !slices.Equal(gotNS, wantNS) {
		t.Errorf("namespaces = %v, want %v", gotNS, wantNS)
	}
	if len(s.Linux.MaskedPaths) != 10 || len(s.Linux.ReadonlyPaths) != 5 {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestExamplesValidate(t *testing.T) {
	for name, s := range map[string]*specs.Spec{"Example": Example(), "ExampleRootless": ExampleRootless()} {
		t.Run(name, func(t *testing.T) {
			bundle, _ := testBundle(t)
			if err := Validate(s, bundle, acceptSeccomp); err != nil {
				t.Fatalf("Validate(%s()) = %v", name, err)
			}
		})
	}
}

func TestExampleRootless(t *testing.T) {
	s := ExampleRootless()
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			t.Error("rootless template keeps the network namespace")
		}
	}
	if last := s.Linux.Namespaces[len(s.Linux.Namespaces)-1]; last.Type != specs.UserNamespace {
		t.Errorf("last namespace = %v, want user", last.Type)
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].HostID != uint32(os.Geteuid()) || m[0].Size != 1 {
		t.Errorf("uidMappings = %+v", m)
	}
	if m := s.Linux.GIDMappings; len(m) != 1 || m[0].HostID != uint32(os.Getegid()) || m[0].Size != 1 {
		t.Errorf("gidMappings = %+v", m)
	}
	if s.Linux.Resources != nil {
		t.Error("rootless template keeps cgroup resources")
	}
	for _, m := range s.Mounts {
		for _, o := range m.Options {
			if len(o) > 4 && (o[:4] == "gid=" || o[:4] == "uid=") {
				t.Errorf("mount %s keeps %s", m.Destination, o)
			}
		}
		if m.Destination == "/sys" && (m.Type != "none" || !slices.Contains(m.Options, "rbind")) {
			t.Errorf("/sys mount = %+v, want an rbind", m)
		}
	}
}
