package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserRunRmFRemovesWhatItCanOfAContainerWhoseStateIsCut cuts a
// running image container's state.json (empty, then half of it: written
// whole by bulwark, so a bad disk or a hand's edit) under a run -d on a
// bridge with -p. rm -f failed on the file ("unexpected end of JSON
// input") and removed nothing: the payload, its cgroup, the snapshot's
// overlay, the network's veth, rules and lease and the user namespace
// range all stayed. Now it exits non-zero naming the file and what it
// could not know, and removes the rest: its cgroup at the default path,
// and everything the run's journal names.
func TestUserRunRmFRemovesWhatItCanOfAContainerWhoseStateIsCut(t *testing.T) {
	e := newEnv(t)
	netRootfs(t) // skips without the CNI plugins
	dr := imageDataRoot(t, "example.com/busy:1")
	if r := e.bw("--data-root", dr, "run", "--name", e.id(), "--net", "bridge", "-p", "18290:80", "example.com/busy:1", "--", "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	host := snapHost(t)
	for i, cut := range []string{"empty", "half"} {
		id := e.id()
		if r := e.bw("--data-root", dr, "run", "-d", "--name", id, "--net", "bridge", "-p", fmt.Sprintf("%d:80", 18301+i), "example.com/busy:1", "--", "sleep", "30"); r.code != 0 {
			t.Fatal(r)
		}
		p := filepath.Join(e.root, id, "state.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if cut == "empty" {
			b = nil
		} else {
			b = b[:len(b)/2]
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if r := e.bw("rm", id); r.code == 0 || !strings.Contains(r.stderr, p) || !strings.Contains(r.stderr, "rm -f") {
			t.Errorf("%s state.json: rm without -f: %v, want a refusal naming the file and rm -f", cut, r)
		}
		r := e.bw("--data-root", dr, "rm", "-f", id)
		if r.code == 0 || !strings.Contains(r.stderr, p) || !strings.Contains(r.stderr, "are left") {
			t.Errorf("%s state.json: rm -f: %v, want an error naming the file and what may be left", cut, r)
		}
		e.assertUserRunGone(id)
		assertClean(t, e.root, id, "", host)
		if ms := mountsUnder(t, dr); len(ms) != 0 {
			t.Errorf("%s state.json: mounts left under the data root: %q", cut, ms)
		}
		if ents, _ := os.ReadDir(filepath.Join(dr, "containers")); len(ents) != 0 {
			t.Errorf("%s state.json: snapshots left: %v", cut, ents)
		}
		assertNetStateBack(t, before, cut+" state.json: left by rm -f")
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestUserRunRmFUndoesANetworkAttachmentWhoseRecordIsCut cuts the
// attachment record of a running container on a bridge with -p (empty,
// then half). rm -f failed on it ("network record ...: unexpected end of
// JSON input") and the veth, the lease, the masquerade and port rules and
// the network namespace stayed for good (gc cannot read the record
// either); now the attachment is undone from what the record's name leads
// to (the plugins' cache of the ADD, the hosts entries, the namespace).
func TestUserRunRmFUndoesANetworkAttachmentWhoseRecordIsCut(t *testing.T) {
	e := newEnv(t)
	netRootfs(t) // skips without the CNI plugins
	dr := imageDataRoot(t, "example.com/busy:1")
	if r := e.bw("--data-root", dr, "run", "--name", e.id(), "--net", "bridge", "-p", "18295:80", "example.com/busy:1", "--", "/bin/true"); r.code != 0 {
		t.Fatalf("first run on bridge: %v", r)
	}
	before := netState(t)
	host := snapHost(t)
	for i, cut := range []string{"empty", "half"} {
		id := e.id()
		if r := e.bw("--data-root", dr, "run", "-d", "--name", id, "--net", "bridge", "-p", fmt.Sprintf("%d:80", 18311+i), "example.com/busy:1", "--", "sleep", "30"); r.code != 0 {
			t.Fatal(r)
		}
		var p string
		recs, _ := filepath.Glob("/run/bulwark-net/attach/*.json")
		for _, r := range recs {
			if b, _ := os.ReadFile(r); strings.Contains(string(b), `"`+id+`"`) {
				p = r
			}
		}
		if p == "" {
			t.Fatalf("no attachment record names %s", id)
		}
		b, _ := os.ReadFile(p)
		if cut == "empty" {
			b = nil
		} else {
			b = b[:len(b)/2]
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if r := e.bw("--data-root", dr, "rm", "-f", id); r.code != 0 {
			t.Errorf("%s record: rm -f: %v", cut, r)
		}
		e.assertUserRunGone(id)
		assertClean(t, e.root, id, "", host)
		assertNetStateBack(t, before, cut+" attachment record: left by rm -f")
		if t.Failed() {
			t.FailNow()
		}
	}
}
