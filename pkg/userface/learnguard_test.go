package userface

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadGuardPipe(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ids  []string
		done bool
	}{
		{"", nil, false},
		{"id a\n", []string{"a"}, false},
		{"id a\nid a-no-cap_kill\ndone\n", []string{"a", "a-no-cap_kill"}, true},
		// A last line without its newline still counts (pipe writes this
		// short are atomic, so it is whole).
		{"id a\nid b", []string{"a", "b"}, false},
		{"id a\nnonsense\n", []string{"a"}, false},
	} {
		ids, done := readGuardPipe(strings.NewReader(tc.in))
		if !slices.Equal(ids, tc.ids) || done != tc.done {
			t.Errorf("%q: %v %v, want %v %v", tc.in, ids, done, tc.ids, tc.done)
		}
	}
}

func TestRemoveProfileTempsOnlyThisRunsTemporaries(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p[1].json")
	start := time.Now()
	old := filepath.Join(dir, ".p[1].json.111")
	for name, mtime := range map[string]time.Time{
		".p[1].json.222": start.Add(time.Second), // this run's: removed
		".p[1].json.111": start.Add(-time.Hour),  // an older run's: kept
		"p[1].json":      start.Add(time.Second), // the profile: kept
		".other.json.1":  start.Add(time.Second), // another file's: kept
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	removeProfileTemps(out, start)
	for _, p := range []string{old, out, filepath.Join(dir, ".other.json.1")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".p[1].json.222")); err == nil {
		t.Errorf("this run's temporary profile kept")
	}
}
