package cri

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runtimeRoot is where the runc shim keeps its runtime's state for the
// CRI's namespace: it passes --root to bulwark and runc alike.
const runtimeRoot = "/run/containerd/runc/k8s.io"

func itoa(i int) string { return strconv.Itoa(i) }

// stateOf reads the runtime's state.json of a container: bulwark's has a
// "phase", runc's an "init_process_pid"; "" when there is none.
func stateOf(id string) (owner string, raw string) {
	b, err := os.ReadFile(filepath.Join(runtimeRoot, id, "state.json"))
	if err != nil {
		return "", ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "unreadable", string(b)
	}
	switch {
	case m["phase"] != nil:
		return "bulwark", string(b)
	case m["init_process_pid"] != nil:
		return "runc", string(b)
	}
	return "unknown", string(b)
}

// bulwarkStatesOf lists the ids of bulwark's states whose bundle is in
// dir: those of one daemon, whatever other daemons (or an earlier run) left.
func bulwarkStatesOf(dir string) []string {
	var ids []string
	ents, _ := os.ReadDir(runtimeRoot)
	for _, e := range ents {
		owner, raw := stateOf(e.Name())
		var st struct{ Bundle string }
		if owner == "bulwark" && json.Unmarshal([]byte(raw), &st) == nil && strings.HasPrefix(st.Bundle, dir+"/") {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

// bulwarkState is the path of bulwark's state of id, or "".
func bulwarkState(id string) string {
	if owner, _ := stateOf(id); owner == "bulwark" {
		return filepath.Join(runtimeRoot, id)
	}
	return ""
}

// assertRunByBulwark fails unless bulwark (not runc) keeps the state of
// every id.
func assertRunByBulwark(t *testing.T, d *daemon, ids ...string) {
	t.Helper()
	assertRunBy(t, "bulwark", ids...)
}

func assertRunBy(t *testing.T, runtime string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if owner, raw := stateOf(id); owner != runtime {
			t.Fatalf("container %s: state kept by %q, want %s (%s)", id, owner, runtime, raw)
		}
	}
}
