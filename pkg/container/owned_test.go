package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/pkg/userns"
)

func TestOwnedRelease(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, tmp string) (Owned, []string) // the entry, paths that must be gone
		keep    []string                                         // paths (under tmp) that must stay
		wantErr string
	}{
		{name: "dir with its content", setup: func(t *testing.T, tmp string) (Owned, []string) {
			d := filepath.Join(tmp, "d")
			mustWrite(t, filepath.Join(d, "sub", "f"))
			return Owned{Kind: OwnedDir, Path: d}, []string{d}
		}},
		{name: "dir already gone", setup: func(t *testing.T, tmp string) (Owned, []string) {
			return Owned{Kind: OwnedDir, Path: filepath.Join(tmp, "none")}, nil
		}},
		{name: "empty shared dir", setup: func(t *testing.T, tmp string) (Owned, []string) {
			d := filepath.Join(tmp, "shared")
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
			return Owned{Kind: OwnedSharedDir, Path: d}, []string{d}
		}},
		{name: "shared dir another container still uses", keep: []string{"shared/other"}, setup: func(t *testing.T, tmp string) (Owned, []string) {
			mustWrite(t, filepath.Join(tmp, "shared", "other"))
			return Owned{Kind: OwnedSharedDir, Path: filepath.Join(tmp, "shared")}, nil
		}},
		{name: "user namespace range", setup: func(t *testing.T, tmp string) (Owned, []string) {
			p := &userns.Pool{Dir: filepath.Join(tmp, "pool"), Base: 100000, Size: 65536, MaxRanges: 4}
			if _, err := p.Allocate(filepath.Join(tmp, "state")); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Allocate("/someone/else"); err != nil {
				t.Fatal(err)
			}
			return Owned{Kind: OwnedUsernsRange, Path: p.Dir}, []string{filepath.Join(p.Dir, "0")}
		}, keep: []string{"pool/1"}},
		{name: "mount point no longer mounted", keep: []string{"m"}, setup: func(t *testing.T, tmp string) (Owned, []string) {
			if err := os.Mkdir(filepath.Join(tmp, "m"), 0o700); err != nil {
				t.Fatal(err)
			}
			return Owned{Kind: OwnedMount, Path: filepath.Join(tmp, "m")}, nil
		}},
		{name: "relative path", wantErr: "not an absolute path", setup: func(t *testing.T, tmp string) (Owned, []string) {
			return Owned{Kind: OwnedDir, Path: "rel"}, nil
		}},
		{name: "the root", wantErr: "not an absolute path", setup: func(t *testing.T, tmp string) (Owned, []string) {
			return Owned{Kind: OwnedDir, Path: "//"}, nil
		}},
		{name: "unknown kind", wantErr: "unknown kind", keep: []string{"x"}, setup: func(t *testing.T, tmp string) (Owned, []string) {
			mustWrite(t, filepath.Join(tmp, "x"))
			return Owned{Kind: "file", Path: filepath.Join(tmp, "x")}, nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			o, gone := tc.setup(t, tmp)
			err := o.Release(filepath.Join(tmp, "state"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for _, p := range gone {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s left behind", p)
				}
			}
			for _, p := range tc.keep {
				if _, err := os.Lstat(filepath.Join(tmp, p)); err != nil {
					t.Errorf("%s removed: %v", p, err)
				}
			}
		})
	}
}

func mustWrite(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKillRecordedGroup(t *testing.T) {
	dir := t.TempDir()
	sleeper := func(t *testing.T) *exec.Cmd {
		c := exec.Command("sleep", "30")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	for _, c := range []struct {
		name     string
		record   func(t *testing.T, path string) *exec.Cmd
		wantErr  bool
		wantDead bool
	}{
		{"no record: nothing to kill", func(*testing.T, string) *exec.Cmd { return nil }, false, false},
		{"malformed record", func(t *testing.T, p string) *exec.Cmd {
			os.WriteFile(p, []byte("pasta\n"), 0o600)
			return nil
		}, true, false},
		{"live group: killed", func(t *testing.T, p string) *exec.Cmd {
			c := sleeper(t)
			if err := RecordGroup(p, c.Process.Pid); err != nil {
				t.Fatal(err)
			}
			return c
		}, false, true},
		{"number reused by a later process: spared", func(t *testing.T, p string) *exec.Cmd {
			c := sleeper(t)
			os.WriteFile(p, []byte(fmt.Sprintf("%d 1\n", c.Process.Pid)), 0o600)
			return c
		}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			proc := c.record(t, p)
			err := KillRecordedGroup(p)
			if (err != nil) != c.wantErr {
				t.Fatalf("KillRecordedGroup: %v, want error %v", err, c.wantErr)
			}
			if proc == nil {
				return
			}
			done := make(chan error, 1)
			go func() { done <- proc.Wait() }()
			select {
			case <-done:
				if !c.wantDead {
					t.Error("the process was killed")
				}
			case <-time.After(2 * time.Second):
				if c.wantDead {
					t.Error("the process is alive 2s later")
				}
			}
		})
	}
}

// TestCollectGroups: gc kills the relay group of a container whose init
// is gone, and spares that of a live container and a group whose number
// now belongs to a process started later.
func TestCollectGroups(t *testing.T) {
	r := &Runtime{Root: t.TempDir()}
	selfStart, _, err := procStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id       string
		initPid  int    // the recorded init
		start    uint64 // its recorded start time
		reused   bool   // the record's start time is not the leader's
		wantDead bool
	}{
		{"stopped", os.Getpid(), selfStart + 1, false, true},
		{"running", os.Getpid(), selfStart, false, false},
		{"stopped-reused", os.Getpid(), selfStart + 1, true, false},
	} {
		group := exec.Command("sleep", "30")
		group.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := group.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { group.Process.Kill(); group.Wait() })
		dir := r.dir(c.id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		rec := filepath.Join(dir, "relay.pgid")
		if err := RecordGroup(rec, group.Process.Pid); err != nil {
			t.Fatal(err)
		}
		if c.reused {
			os.WriteFile(rec, []byte(fmt.Sprintf("%d 1\n", group.Process.Pid)), 0o600)
		}
		st := &State{ID: c.id, Pid: c.initPid, PidStart: c.start, Phase: PhaseCreated,
			Owns: []Owned{{Kind: OwnedProcessGroup, Path: rec}}}
		if err := r.saveState(st); err != nil {
			t.Fatal(err)
		}
		defer func(id string, wantDead bool) {
			done := make(chan error, 1)
			go func() { done <- group.Wait() }()
			select {
			case <-done:
				if !wantDead {
					t.Errorf("%s: its group was killed", id)
				}
			case <-time.After(time.Second):
				if wantDead {
					t.Errorf("%s: its group is alive 1s after CollectGroups", id)
				}
			}
		}(c.id, c.wantDead)
	}
	ids, err := r.CollectGroups()
	if err != nil || len(ids) != 1 || ids[0] != "stopped" {
		t.Errorf("CollectGroups = %v, %v; want [stopped]", ids, err)
	}
}
