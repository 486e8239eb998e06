package engines

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/learntest"
)

// TestPodmanLearnsAContainerThroughTheAnnotation: `podman run --runtime
// bulwark --annotation run.bulwark.learn=PATH IMAGE CMD` writes the
// learned profile to PATH once the container has ended (create's recorder,
// docs/learn.md), recorded under podman's own seccomp filter; its seccomp
// member, given back to podman with --security-opt seccomp=FILE, runs the
// same command, with and without no-new-privileges, and refuses one it
// never made. Podman, not Docker: the Docker here (20.10) has no
// --annotation (it came with API 1.43), so an annotation cannot reach the
// runtime through it.
func TestPodmanLearnsAContainerThroughTheAnnotation(t *testing.T) {
	e := startPodman(t)
	dir := t.TempDir() // root's, 0700: a directory only root can write
	out := filepath.Join(dir, "sh.json")
	const script = "echo learned > /dev/null; echo done"
	if r := e.run(t, []string{"--annotation", "run.bulwark.learn=" + out}, "sh", "-c", script); r.code != 0 || strings.TrimSpace(r.stdout) != "done" {
		t.Fatalf("podman run with the annotation: %v", r)
	}
	learntest.WaitProfile(t, out, 30*time.Second)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Base        string                                 `json:"base"`
		SeccompBase string                                 `json:"seccompBase"`
		Seccomp     json.RawMessage                        `json:"seccomp"`
		Observed    struct{ Syscalls map[string][]string } `json:"observed"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	for _, want := range []string{"execve", "write", "exit_group"} {
		if _, ok := p.Observed.Syscalls[want]; !ok {
			t.Errorf("the recording missed %s: %v", want, p.Observed.Syscalls)
		}
	}
	for _, never := range []string{"mkdir", "mkdirat"} {
		if _, ok := p.Observed.Syscalls[never]; ok {
			t.Errorf("the recording holds %s, which the command never made", never)
		}
	}
	if p.Base != "default" || p.SeccompBase != "config" {
		t.Errorf("base %q, seccompBase %q; want default and config", p.Base, p.SeccompBase)
	}
	filter := filepath.Join(dir, "sh-seccomp.json")
	if err := os.WriteFile(filter, p.Seccomp, 0o644); err != nil {
		t.Fatal(err)
	}
	// Without no-new-privileges (podman's default) as with it: the init
	// loads the filter right before execve either way, so a learned
	// filter, which holds none of the init's own calls, runs the command.
	for _, sec := range [][]string{
		{"--security-opt", "seccomp=" + filter},
		{"--security-opt", "seccomp=" + filter, "--security-opt", "no-new-privileges"},
	} {
		if r := e.run(t, sec, "sh", "-c", script); r.code != 0 || strings.TrimSpace(r.stdout) != "done" {
			t.Fatalf("the command under its learned filter, through podman %v: %v", sec, r)
		}
		if r := e.run(t, sec, "sh", "-c", "mkdir /tmp/learned-never"); r.code == 0 {
			t.Errorf("a mkdir the recording never saw ran under the learned filter, podman %v: %v", sec, r)
		}
	}
}
