package userface

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/cleanup"
)

func TestUserEntriesNameAnUnlistedUser(t *testing.T) {
	const debianPasswd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104::/var/lib/postgresql:/bin/bash"
	const debianGroup = "root:x:0:\npostgres:x:104:\n"
	tests := []struct {
		name              string
		passwd, group     string // "" leaves the file out
		uid, gid          uint32
		tmp               bool
		mounted           string // a mount the person made
		wantPw, wantGroup string // the added line, "" for no private file
	}{
		{name: "uid 1000 unlisted", passwd: debianPasswd, group: debianGroup, uid: 1000, gid: 1000, tmp: true,
			wantPw: "1000:x:1000:1000:container user:/tmp:/bin/sh\n", wantGroup: "1000:x:1000:\n"},
		{name: "listed user, unlisted group", passwd: debianPasswd, group: debianGroup, uid: 101, gid: 2000,
			wantGroup: "2000:x:2000:\n"},
		{name: "listed user and group", passwd: debianPasswd, group: debianGroup, uid: 101, gid: 104},
		{name: "no /etc files in the rootfs", uid: 1000, gid: 1000},
		{name: "the number is another user's name", passwd: "root:x:0:0::/:/bin/sh\n1000:x:5:5::/:/bin/sh", group: debianGroup, uid: 1000, gid: 0,
			wantPw: "bulwark1000:x:1000:0:container user:/:/bin/sh\n"},
		{name: "the person's own -v /etc/passwd wins", passwd: debianPasswd, group: debianGroup, uid: 1000, gid: 104, mounted: "/etc/passwd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, content := range map[string]string{"passwd": tc.passwd, "group": tc.group} {
				if content != "" {
					if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := &specs.Spec{Root: &specs.Root{Path: root}, Process: &specs.Process{User: specs.User{UID: tc.uid, GID: tc.gid}}}
			if tc.tmp {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs"})
			}
			if tc.mounted != "" {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: tc.mounted, Type: "bind", Source: "/etc/passwd"})
			}
			dir := t.TempDir()
			h := &host{undo: &cleanup.Stack{}}
			if err := h.userEntries(s, dir); err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ name, orig, want string }{{"passwd", tc.passwd, tc.wantPw}, {"group", tc.group, tc.wantGroup}} {
				b, err := os.ReadFile(filepath.Join(dir, f.name))
				bound := false
				for _, m := range s.Mounts {
					if m.Destination == "/etc/"+f.name && m.Source == filepath.Join(dir, f.name) {
						bound = true
					}
				}
				if f.want == "" {
					if err == nil || bound {
						t.Errorf("/etc/%s: a private copy was made (%q), want none", f.name, b)
					}
					continue
				}
				if err != nil || !bound {
					t.Fatalf("/etc/%s: no private copy bound in: %v", f.name, err)
				}
				if want := strings.TrimSuffix(f.orig, "\n") + "\n" + f.want; string(b) != want {
					t.Errorf("/etc/%s = %q, want %q", f.name, b, want)
				}
			}
		})
	}
}
