package userface

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseUser(t *testing.T) {
	tests := []struct {
		in      string
		want    User
		wantErr bool
	}{
		{in: "0", want: User{}},
		{in: "1000", want: User{UID: 1000}},
		{in: "1000:100", want: User{UID: 1000, GID: 100, HasGID: true}},
		{in: "4294967295:0", want: User{UID: 4294967295, HasGID: true}},
		{in: "", wantErr: true},
		{in: "root", want: User{Name: "root"}},
		{in: "postgres:ssl-cert", want: User{Name: "postgres", Group: "ssl-cert", HasGID: true}},
		{in: "1000:staff", want: User{UID: 1000, Group: "staff", HasGID: true}},
		{in: "www-data:33", want: User{Name: "www-data", GID: 33, HasGID: true}},
		{in: "../etc", wantErr: true},
		{in: "a/b", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "-n", wantErr: true},
		{in: "1000:", wantErr: true},
		{in: ":100", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "4294967296", wantErr: true},
		{in: "1:2:3", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseUser(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseUser(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
	if g := (User{UID: 5}).GIDOr(5); g != 5 {
		t.Errorf("GIDOr without a group = %d, want the default 5", g)
	}
	if g := (User{UID: 5, HasGID: true}).GIDOr(5); g != 0 {
		t.Errorf("GIDOr with group 0 = %d, want 0", g)
	}
}

func TestParseVolume(t *testing.T) {
	tests := []struct {
		in      string
		want    volume
		wantErr bool
	}{
		{in: "/data:/mnt", want: volume{src: "/data", dst: "/mnt"}},
		{in: "/data:/mnt:ro", want: volume{src: "/data", dst: "/mnt", ro: true}},
		{in: "/data:/mnt:rw", want: volume{src: "/data", dst: "/mnt"}},
		{in: "/data:/mnt:noidmap", want: volume{src: "/data", dst: "/mnt", noIdmap: true}},
		{in: "/data:/mnt:ro,noidmap", want: volume{src: "/data", dst: "/mnt", ro: true, noIdmap: true}},
		{in: "rel:/mnt", want: volume{src: "rel", dst: "/mnt"}},
		{in: "/data:/mnt:idmap=101-4242-1", want: volume{src: "/data", dst: "/mnt", idmap: &specs.LinuxIDMapping{ContainerID: 101, HostID: 4242, Size: 1}}},
		{in: "/data:/mnt:idmap=101-0-1", wantErr: true},
		{in: "/data:/mnt:idmap=101-4242-0", wantErr: true},
		{in: "/data:/mnt:idmap=101-4242", wantErr: true},
		{in: "/data:/mnt:idmap=-1-4242-1", wantErr: true},
		{in: "/data:/mnt:idmap=1-2-3,idmap=1-2-3", wantErr: true},
		{in: "/data:/mnt:idmap=1-2-3,noidmap", wantErr: true},
		{in: "/data", wantErr: true},
		{in: "/data:", wantErr: true},
		{in: ":/mnt", wantErr: true},
		{in: "/data:/mnt:rx", wantErr: true},
		{in: "/a:b:/mnt", wantErr: true},
		{in: "/data:/mnt:ro:ro", wantErr: true},
		{in: "/data:/mnt:ro,ro", wantErr: true},
		{in: "/data:/mnt:ro,rw", wantErr: true},
		{in: "/data:/mnt:", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseVolume(tc.in)
			if (err != nil) != tc.wantErr || !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseVolume(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseTmpfs(t *testing.T) {
	tests := []struct {
		in      string
		dst     string
		size    int64
		exec    bool
		wantErr bool
	}{
		{in: "/run", dst: "/run", size: 64 << 20},
		{in: "/build:exec", dst: "/build", size: 64 << 20, exec: true},
		{in: "/build:exec,size=1g", dst: "/build", size: 1 << 30, exec: true},
		{in: "/build:size=1m,exec,noexec", dst: "/build", size: 1 << 20},
		{in: "/build:exec=1", wantErr: true},
		{in: "/build:suid", wantErr: true},
		{in: "/run:size=1m", dst: "/run", size: 1 << 20},
		{in: "/run:size=1.5g", dst: "/run", size: 3 << 29},
		{in: "/run:size=8k,size=16k", dst: "/run", size: 16 << 10},
		{in: "/run:size=0", wantErr: true},
		{in: "/run:size=lots", wantErr: true},
		{in: "/run:mode=1777", wantErr: true},
		{in: "/run:", dst: "/run", size: 64 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			dst, size, exec, err := parseTmpfs(tc.in)
			if (err != nil) != tc.wantErr || dst != tc.dst || size != tc.size || exec != tc.exec {
				t.Errorf("parseTmpfs(%q) = %q %d exec=%v %v; want %q %d exec=%v, error %v", tc.in, dst, size, exec, err, tc.dst, tc.size, tc.exec, tc.wantErr)
			}
		})
	}
}

func TestUserResolveReadsTheImage(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\npostgres:x:101:103::/var/lib/postgresql:/bin/sh\n",
		"etc/group":  "root:x:0:\nssl-cert:x:104:postgres\npostgres:x:103:\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		in   string
		want User
		err  string
	}{
		{in: "postgres", want: User{UID: 101, GID: 103, HasGID: true}},
		{in: "postgres:ssl-cert", want: User{UID: 101, GID: 104, HasGID: true}},
		{in: "postgres:0", want: User{UID: 101, GID: 0, HasGID: true}},
		{in: "1000:postgres", want: User{UID: 1000, GID: 103, HasGID: true}},
		{in: "1000", want: User{UID: 1000}},
		{in: "nobody", err: "user nobody: no such entry in the image's /etc/passwd"},
		{in: "root:wheel", err: "group wheel: no such entry in the image's /etc/group"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			u, err := ParseUser(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := u.Resolve(root)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("Resolve(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := (User{Name: "root"}).Resolve(filepath.Join(root, "missing")); err == nil || !strings.Contains(err.Error(), "a name needs the image's /etc/passwd") {
		t.Errorf("a name without a passwd file: %v", err)
	}
}
