package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

type report struct {
	Schema   int               `json:"schemaVersion"`
	Command  string            `json:"command"`
	Format   string            `json:"format"`
	Facts    map[string]string `json:"facts"`
	Findings []struct {
		ID       string `json:"id"`
		Severity string `json:"severity"`
		Fix      string `json:"fix"`
	} `json:"findings"`
	Counts map[string]int `json:"counts"`
}

func parseReport(t *testing.T, r result) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, r)
	}
	if rep.Schema != 1 {
		t.Fatalf("schemaVersion %d", rep.Schema)
	}
	return rep
}

// TestAuditGatesCIOnSeverity runs the built binary on a bundle `bulwark
// spec --profile default` wrote (clean), the same bundle made privileged
// with a SUID shell in its rootfs, docker inspect on stdin, and bad input.
func TestAuditGatesCIOnSeverity(t *testing.T) {
	e := newEnv(t)
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.bw("spec", "--profile", "default", "--rootfs", rootfs, "--bundle", bundle); r.code != 0 {
		t.Fatalf("spec: %s", r)
	}

	clean := e.bw("audit", "--json", "--fail-on", "medium", bundle)
	if clean.code != 0 {
		t.Fatalf("the default profile fails --fail-on medium: %s", clean)
	}
	if rep := parseReport(t, clean); rep.Format != "oci" || rep.Counts["high"] != 0 || rep.Counts["critical"] != 0 {
		t.Errorf("clean bundle: %+v", rep)
	}

	// Make it privileged-shaped, mount docker.sock, and plant a SUID shell.
	cfgPath := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
	s.Process.NoNewPrivileges = false
	delete(s.Annotations, "run.bulwark.rootfs-options")
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/var/run/docker.sock", Source: "/var/run/docker.sock", Type: "bind", Options: []string{"rbind"}})
	b, _ = json.Marshal(&s)
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	shell := filepath.Join(rootfs, "bin", "sh")
	if err := os.WriteFile(shell, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shell, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	bad := e.bw("audit", "--json", "--fail-on", "critical", bundle)
	if bad.code != 1 {
		t.Fatalf("--fail-on critical did not fail: %s", bad)
	}
	got := map[string]string{}
	for _, f := range parseReport(t, bad).Findings {
		got[f.ID] = f.Severity
		if f.Fix == "" {
			t.Errorf("%s has no fix", f.ID)
		}
	}
	for id, sev := range map[string]string{"cap-sys-admin": "critical", "mount-runtime-socket": "critical", "image-suid-shell": "high", "no-new-privileges-off": "medium"} {
		if got[id] != sev {
			t.Errorf("%s: %q, want %s (all: %v)", id, got[id], sev, got)
		}
	}
	// Without --fail-on findings never fail the command; the table names them.
	table := e.bw("audit", bundle)
	if table.code != 0 || !strings.Contains(table.stdout, "mount-runtime-socket") || !strings.Contains(table.stdout, "fix:") {
		t.Errorf("table: %s", table)
	}

	inspect, err := os.ReadFile("../pkg/audit/testdata/docker-inspect.json")
	if err != nil {
		t.Fatal(err)
	}
	r := e.bwIn(inspect, "audit", "--json", "--fail-on", "high", "-")
	if r.code != 1 || parseReport(t, r).Format != "docker" {
		t.Errorf("docker inspect on stdin: %s", r)
	}

	malformed := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(malformed, []byte("kind: Pod\nspec:\n  containers:\n  - name: a\n   image: b\n"), 0o644)
	for _, args := range [][]string{
		{"audit", malformed},
		{"audit", filepath.Join(t.TempDir(), "missing.json")},
		{"audit", "--fail-on", "severe", bundle},
		{"audit"},
	} {
		r := e.bw(args...)
		if r.code != 2 || r.stderr == "" {
			t.Errorf("%v: want exit 2 and an error, got %s", args, r)
		}
	}
}

// TestCheckNamesThisKernel runs check on this host and on a test root.
func TestCheckNamesThisKernel(t *testing.T) {
	e := newEnv(t)
	rel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	r := e.bw("check", "--json")
	if r.code != 0 {
		t.Fatalf("check: %s", r)
	}
	rep := parseReport(t, r)
	if rep.Command != "check" || rep.Facts["kernel"] != strings.TrimSpace(string(rel)) {
		t.Errorf("check does not name this kernel %q: %v", rel, rep.Facts)
	}
	if table := e.bw("check"); table.code != 0 || !strings.Contains(table.stdout, strings.TrimSpace(string(rel))) {
		t.Errorf("table: %s", table)
	}

	root := t.TempDir()
	for p, c := range map[string]string{
		"proc/sys/kernel/osrelease":             "5.10.101",
		"proc/sys/kernel/seccomp/actions_avail": "kill_process errno user_notif allow",
		"proc/sys/user/max_user_namespaces":     "100",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c+"\n"), 0o644)
	}
	r = e.bw("check", "--json", "--fail-on", "critical", "--root-dir", root)
	if r.code != 1 || !strings.Contains(r.stdout, "kernel-cve-2022-0847") {
		t.Errorf("Dirty Pipe kernel in a test root: %s", r)
	}
	if r := e.bw("check", "--root-dir", filepath.Join(root, "missing")); r.code != 2 {
		t.Errorf("missing --root-dir: %s", r)
	}
}

// TestAuditImageInTheStore loads an image whose lower layer has a setuid
// shell and a setuid su, and whose upper layer deletes the shell: audit by
// name reports su, not the deleted shell.
func TestAuditImageInTheStore(t *testing.T) {
	img := imagetest.Image(t, runtime.GOARCH,
		imagetest.Layer(t, "gzip",
			imagetest.Entry{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
			imagetest.Entry{Name: "bin/sh", Body: "x", Mode: 0o4755},
			imagetest.Entry{Name: "bin/su", Body: "x", Mode: 0o4755}),
		imagetest.Layer(t, "gzip", imagetest.Entry{Name: "bin/.wh.sh", Body: ""}))
	tag, _ := name.NewTag("example.com/suid:1")
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	dr := t.TempDir()
	if _, serr, err := bulwarkImages(t, dr, buf.Bytes(), "load", "--quiet"); err != nil {
		t.Fatalf("load: %v: %s", err, serr)
	}
	out, serr, err := bulwarkImages(t, dr, nil, "audit", "--json", "example.com/suid:1")
	if err != nil {
		t.Fatalf("audit: %v: %s", err, serr)
	}
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Format != "image" {
		t.Fatalf("report: %v %q", err, out)
	}
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.ID)
	}
	if !strings.Contains(strings.Join(got, " "), "image-suid") || strings.Contains(strings.Join(got, " "), "image-suid-shell") {
		t.Errorf("findings %v: want /bin/su's image-suid and no image-suid-shell for the deleted /bin/sh", got)
	}
	if _, _, err := bulwarkImages(t, dr, nil, "audit", "example.com/absent:1"); err == nil {
		t.Errorf("audit of an absent image succeeded")
	}
}
