package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// An engine builds each exec's process.json from its own copy of the
// container's config, with the capabilities the floor dropped (kubectl
// exec through containerd's CRI, docker exec): under the floor the exec'd
// process gets no more than the container; without it, runc's semantics.
func TestHardenLimitsAnExecdProcessToTheContainer(t *testing.T) {
	e := newEnv(t)
	noPolicy := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(noPolicy, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		dockerShaped(s)
		s.Process.Args = []string{"sleep", "100"}
	})
	id := e.id()
	e.mustOK("--harden", "--policy", noPolicy, "run", "-d", "-b", bundle, id)

	c := func() []string { return slices.Clone(dockerCaps) }
	proc := specs.Process{Args: []string{"sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status | tr -d '\\t'"}, Cwd: "/",
		Env:          []string{"PATH=/bin:/usr/bin"},
		Capabilities: &specs.LinuxCapabilities{Bounding: c(), Effective: c(), Permitted: c()}}
	b, _ := json.Marshal(proc)
	pf := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(pf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		flags  []string
		netRaw bool
		nnp    string
	}{
		{"--harden", []string{"--harden", "--policy", noPolicy}, false, "1"},
		// The container's Landlock domain, which the exec joins, sets
		// no_new_privs whatever process.json says.
		{"oci mode", []string{"--policy", noPolicy}, true, "1"},
	} {
		r := e.bw(append(tc.flags, "exec", "--process", pf, id)...)
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				got[k] = v
			}
		}
		if r.code != 0 || got["CapEff"] == "" {
			t.Fatalf("%s: exec: %v", tc.name, r)
		}
		if has := hasCapBit(t, got["CapEff"], capNetRaw); has != tc.netRaw || got["NoNewPrivs"] != tc.nnp {
			t.Errorf("%s: exec'd process has NET_RAW %v, NoNewPrivs %s; want %v, %s", tc.name, has, got["NoNewPrivs"], tc.netRaw, tc.nnp)
		}
	}
}
