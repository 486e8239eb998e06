package passwd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const passwdFile = `root:x:0:0:root:/root:/bin/bash
# a comment
+nis-import
broken line
nouid:x::1:::
postgres:x:101:103:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
app:x:1000:1000::/home/app:/bin/sh
dup:x:1000:1000::/elsewhere:/bin/sh
`

func TestFindUser(t *testing.T) {
	tests := []struct {
		name    string
		match   func(User) bool
		want    User
		wantErr error
	}{
		{"root by uid", func(u User) bool { return u.UID == 0 }, User{"root", 0, 0, "/root"}, nil},
		{"by name", func(u User) bool { return u.Name == "postgres" }, User{"postgres", 101, 103, "/var/lib/postgresql"}, nil},
		{"the first of two with one uid", func(u User) bool { return u.UID == 1000 }, User{"app", 1000, 1000, "/home/app"}, nil},
		{"a malformed line is no entry", func(u User) bool { return u.Name == "nouid" || u.Name == "broken line" }, User{}, ErrNotFound},
		{"missing", func(u User) bool { return u.UID == 4242 }, User{}, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindUser(strings.NewReader(passwdFile), tc.match, "x")
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Errorf("got %+v, %v; want %+v, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFindGroup(t *testing.T) {
	const group = "root:x:0:\nssl-cert:x:104:postgres\npostgres:x:103:\nbad:x:notanumber:\n"
	for _, tc := range []struct {
		name string
		want Group
		err  error
	}{
		{"postgres", Group{"postgres", 103}, nil},
		{"ssl-cert", Group{"ssl-cert", 104}, nil},
		{"bad", Group{}, ErrNotFound},
	} {
		got, err := FindGroup(strings.NewReader(group), func(g Group) bool { return g.Name == tc.name }, tc.name)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

// TestOpenRefusesWhatIsNotAFile: an image may put a FIFO where /etc/passwd
// belongs; opening it must neither block nor read it.
func TestOpenRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "passwd")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, err := UserByUID(fifo, 0); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v, want not a regular file", err)
	}
	if _, err := UserByUID(dir, 0); err == nil {
		t.Error("a directory was read as passwd")
	}
	file := filepath.Join(dir, "real")
	if err := os.WriteFile(file, []byte(passwdFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if u, err := UserByUID(file, 101); err != nil || u.Home != "/var/lib/postgresql" {
		t.Errorf("UserByUID(101) = %+v, %v", u, err)
	}
}

func TestHugeFileIsReadOnlyUpToMaxSize(t *testing.T) {
	huge := strings.Repeat("x:x:1:1::/h:/s\n", MaxSize/15+10) + "late:x:7:7::/late:/s\n"
	if _, err := FindUser(strings.NewReader(huge), func(u User) bool { return u.Name == "late" }, "late"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an entry past MaxSize: %v, want ErrNotFound", err)
	}
}
