package passwd

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// TestOpenInRootStaysInTheImage: an image's /etc/passwd that links to an
// absolute path, or climbs out with "..", reads the image's file, never
// the host's.
func TestOpenInRootStaysInTheImage(t *testing.T) {
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("hostuser:x:0:0::/host:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(host, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "secret"), []byte("imageuser:x:5:5::/image:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(secret, filepath.Join(root, "etc/hostlink"))
	if f, err := OpenInRoot(root, "etc/hostlink"); err == nil {
		f.Close()
		t.Errorf("a link to the host's %s opened", secret)
	}
	for _, link := range []string{"/secret", "../../secret"} {
		os.Remove(filepath.Join(root, "etc/passwd"))
		if err := os.Symlink(link, filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		f, err := OpenInRoot(root, "etc/passwd")
		if err != nil {
			t.Fatalf("link to %s: %v", link, err)
		}
		us, err := ParseUsers(f)
		f.Close()
		if err != nil || len(us) != 1 || us[0].Name != "imageuser" {
			t.Errorf("link to %s read %+v, %v; want the image's imageuser", link, us, err)
		}
	}
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err == nil {
		if _, err := OpenInRoot(root, "etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("FIFO in the image: %v, want not a regular file", err)
		}
	}
}

func TestWithHomeKeepsAGivenHome(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"PATH=/bin", "HOME=/srv"}, "HOME=/srv"},
		{[]string{"HOME=", "HOME=/srv"}, "HOME=/srv"},
	}
	for _, tc := range tests {
		got := WithHome(tc.env, 0)
		if !slices.Contains(got, tc.want) {
			t.Errorf("WithHome(%q) = %q, want %q kept", tc.env, got, tc.want)
		}
	}
	// Without HOME one is added, whatever the host's /etc/passwd says,
	// and the caller's slice is not written through.
	env := make([]string, 1, 4)
	env[0] = "PATH=/bin"
	got := WithHome(env, 4294967294)
	if len(got) != 2 || !strings.HasPrefix(got[1], "HOME=/") || cap(env) != 4 || len(env) != 1 {
		t.Errorf("WithHome = %q", got)
	}
	if got2 := append(env, "X=1"); got2[1] != "X=1" || got[1] == "X=1" {
		t.Errorf("WithHome shares the caller's backing array: %q", got)
	}
}

// The environment as runc hands it to the process: one entry per name, the
// last value where it was last given, and an empty HOME taken as none.
func TestWithHomeGivesEachVariableOnce(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"last value wins", []string{"ONE=two", "ONE=three", "HOME=/h"}, []string{"ONE=three", "HOME=/h"}},
		{"an empty value is a value", []string{"ONE=two", "ONE=", "PATH=/bin", "HOME=/h"}, []string{"ONE=", "PATH=/bin", "HOME=/h"}},
		{"at the place of the last mention", []string{"A=1", "B=2", "A=3", "HOME=/h"}, []string{"B=2", "A=3", "HOME=/h"}},
		{"empty HOME is replaced", []string{"HOME=", "PATH=/bin"}, []string{"PATH=/bin", "HOME=/"}},
		{"the last HOME empty", []string{"HOME=/override", "HOME="}, []string{"HOME=/"}},
		{"no HOME", []string{"PATH=/bin"}, []string{"PATH=/bin", "HOME=/"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A uid with no entry: the host's /etc/passwd decides nothing.
			got := WithHome(tc.env, 4294967294)
			if !slices.Equal(got, tc.want) {
				t.Errorf("WithHome(%q) = %q, want %q", tc.env, got, tc.want)
			}
		})
	}
}
