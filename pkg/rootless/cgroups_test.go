package rootless

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindDelegation(t *testing.T) {
	me := os.Geteuid()
	other := me + 12345
	type dir struct {
		path        string
		owner       int
		controllers string
	}
	for _, c := range []struct {
		name    string
		v1      bool
		dirs    []dir
		own     string
		want    string // Delegation.Dir
		wantErr string
	}{
		{name: "cgroup v1", v1: true, own: "/user", wantErr: "cgroup v1"},
		{name: "a delegated parent of the caller's leaf",
			dirs: []dir{{"/u", me, "memory pids cpu"}, {"/u/shell", me, ""}}, own: "/u/shell", want: "/u"},
		{name: "the topmost of several delegated",
			dirs: []dir{{"/s", other, "memory pids"}, {"/s/svc", me, "memory pids"}, {"/s/svc/app", me, "memory pids"}, {"/s/svc/app/leaf", me, ""}}, own: "/s/svc/app/leaf", want: "/s/svc"},
		{name: "nothing delegated",
			dirs: []dir{{"/user.slice", other, "memory pids"}, {"/user.slice/session-1.scope", other, ""}}, own: "/user.slice/session-1.scope", wantErr: "no cgroup v2 subtree is delegated"},
		{name: "the caller runs in the delegated cgroup itself",
			dirs: []dir{{"/u", me, "memory pids"}}, own: "/u", wantErr: "no-internal-process"},
		{name: "controllers missing",
			dirs: []dir{{"/u", me, "cpu"}, {"/u/shell", me, ""}}, own: "/u/shell", wantErr: "lacks the memory, pids controller(s)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if !c.v1 {
				if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("memory pids cpu\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range c.dirs {
				p := filepath.Join(root, d.path)
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
				for f, body := range map[string]string{"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.controllers": d.controllers} {
					if err := os.WriteFile(filepath.Join(p, f), []byte(body), 0o644); err != nil {
						t.Fatal(err)
					}
					if err := os.Chown(filepath.Join(p, f), d.owner, d.owner); err != nil {
						t.Skipf("chown needs root: %v", err)
					}
				}
				if err := os.Chown(p, d.owner, d.owner); err != nil {
					t.Skipf("chown needs root: %v", err)
				}
			}
			self := filepath.Join(t.TempDir(), "cgroup")
			if err := os.WriteFile(self, []byte("0::"+c.own+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			d, err := findDelegation(root, self, me)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || d.Dir != c.want {
				t.Fatalf("= %+v, %v; want %s", d, err, c.want)
			}
			if p := d.ContainerPath("x"); p != c.want+"/bulwark-x" {
				t.Errorf("ContainerPath = %s", p)
			}
		})
	}
}
