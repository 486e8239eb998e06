package userface

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/container"
)

// TestReleaseJournal replays what a killed run journalled: the last own
// call first, each call's records in order (a directory before its shared
// parent, which then goes too), a line cut by the kill skipped, and a
// damaged earlier line refused so that rm can be retried.
func TestReleaseJournal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cut       string // appended after the records: a line cut by the kill
		damage    bool   // an earlier line that is not JSON
		wantErr   string
		wantGone  bool
		wantFirst bool // the first own call's directory removed
	}{
		{name: "whole", wantGone: true, wantFirst: true},
		{name: "last line cut by the kill", cut: `[{"kind":"dir","pa`, wantGone: true, wantFirst: true},
		{name: "damaged earlier line", damage: true, wantErr: "line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			first := filepath.Join(base, "first")
			parent := filepath.Join(base, "shared")
			child := filepath.Join(parent, "child")
			for _, d := range []string{first, child} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			j := filepath.Join(base, ownJournal)
			if tc.damage {
				if err := os.WriteFile(j, []byte("not json\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			must(t, appendJournal(j, []container.Owned{{Kind: container.OwnedDir, Path: first}}))
			must(t, appendJournal(j, []container.Owned{{Kind: container.OwnedDir, Path: child},
				{Kind: container.OwnedSharedDir, Path: parent}}))
			if tc.cut != "" {
				f, err := os.OpenFile(j, os.O_WRONLY|os.O_APPEND, 0)
				must(t, err)
				_, err = f.WriteString(tc.cut)
				must(t, err)
				f.Close()
			}
			err := releaseJournal(nil, j, filepath.Join(base, "state"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("releaseJournal: %v, want an error naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(parent); !os.IsNotExist(err) == tc.wantGone {
				t.Errorf("shared parent after release: %v (its child must go first, then it)", err)
			}
			if _, err := os.Stat(first); !os.IsNotExist(err) == tc.wantFirst {
				t.Errorf("first call's directory after release: %v", err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
