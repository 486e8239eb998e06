package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// The runc CLI details scripts and engines rely on: `kill ID 0` is a
// liveness probe, list and ps --format json print one line each, and an exec
// that never ran its process exits 255, not 1 (the process's own exit 1).
func TestRuncCLIDetailsScriptsRelyOn(t *testing.T) {
	e := newEnv(t)
	id, pid := e.detached(nil)
	if r := e.bw("kill", id, "0"); r.code != 0 {
		t.Fatalf("kill %s 0 of a running container: %v", id, r)
	}
	for _, args := range [][]string{{"list", "--format", "json"}, {"ps", "--format", "json", id}} {
		out := e.mustOK(args...)
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
			t.Fatalf("%v printed %q, want one line", args, out)
		}
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil || !strings.Contains(out, pid) {
			t.Fatalf("%v printed %q (%v), want JSON naming pid %s", args, out, err, pid)
		}
	}
	if r := e.bw("exec", id, "/no/such/binary"); r.code != 255 || !strings.Contains(r.stderr, "/no/such/binary") {
		t.Fatalf("exec of a missing binary: %v, want exit 255 naming it", r)
	}
	if r := e.bw("exec", id, "sh", "-c", "exit 1"); r.code != 1 {
		t.Fatalf("exec of a process exiting 1: %v", r)
	}
	e.mustOK("kill", id, "KILL")
	for i := 0; i < 100 && e.bw("kill", id, "0").code == 0; i++ {
		e.mustOK("state", id)
	}
	if r := e.bw("kill", id, "0"); r.code == 0 || !strings.Contains(r.stderr, "container not running") {
		t.Fatalf("kill %s 0 of a stopped container: %v", id, r)
	}
}

// TestVersionPrintsRuncsLines: --version and -v print runc's shape, the
// name and version, then "commit:", "spec:" (the runtime-spec version),
// "go:" and "libseccomp:"; Docker's `docker info` reads the commit line.
func TestVersionPrintsRuncsLines(t *testing.T) {
	e := newEnv(t)
	for _, flag := range []string{"--version", "-v"} {
		out := e.mustOK(flag)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := []string{"bulwark version ", "commit: ", "spec: " + specs.Version, "go: go", "libseccomp: "}
		if len(lines) != len(want) {
			t.Fatalf("%s printed %q, want %d lines", flag, out, len(want))
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i], w) || len(lines[i]) == len(w) && !strings.HasSuffix(w, specs.Version) {
				t.Errorf("%s line %d = %q, want it to start with %q and carry a value", flag, i, lines[i], w)
			}
		}
	}
}

// `--root DIR list` with a DIR that does not exist is an error, as in runc:
// a mistyped --root must not read as "no containers".
func TestListOfAMissingRootIsAnError(t *testing.T) {
	e := newEnv(t)
	e.root = filepath.Join(e.root, "no-such-dir")
	if r := e.bw("list"); r.code == 0 || !strings.Contains(r.stderr, "no-such-dir") {
		t.Fatalf("list with a missing --root: %v", r)
	}
	if _, err := os.Stat(e.root); err == nil {
		t.Fatalf("list made the missing --root %s", e.root)
	}
}

// --debug logs the runtime's steps, to stderr or to --log (JSON lines with
// level "debug", as runc's); without it nothing is logged at debug level.
func TestDebugLogsTheRuntimesSteps(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
	r := e.bw("--debug", "run", "-b", bundle, e.id())
	if r.code != 0 || !strings.Contains(r.stderr, "bulwark: debug: bulwark --root") || !strings.Contains(r.stderr, "bulwark: debug: cgroup applied") {
		t.Errorf("--debug run: want the command and its steps on stderr: %v", r)
	}
	logFile := filepath.Join(t.TempDir(), "log.json")
	e.mustOK("--debug", "--log", logFile, "--log-format", "json", "run", "-b", bundle, e.id())
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), `"level":"debug","msg":"cgroup applied"`) {
		t.Errorf("--debug --log FILE --log-format json: want debug lines in the file: %v\n%s", err, b)
	}
	if r := e.bw("run", "-b", bundle, e.id()); r.code != 0 || strings.Contains(r.stderr, "debug") {
		t.Errorf("run without --debug logged at debug level: %v", r)
	}
}
