package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestCompileCachesAndRejectsDamagedEntries(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
	}
	dir := t.TempDir()
	want, err := ExportBPF(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Compile(s, dir)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("first Compile: %v, program equal to ExportBPF: %v", err, bytes.Equal(got, want))
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*.bpf"))
	if len(entries) != 1 {
		t.Fatalf("cache entries: %v", entries)
	}
	// A second profile gets its own entry; the first is served from cache.
	other := *s
	other.Syscalls = []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActErrno}}
	if _, err := Compile(&other, dir); err != nil {
		t.Fatal(err)
	}
	if entries, _ = filepath.Glob(filepath.Join(dir, "*.bpf")); len(entries) != 2 {
		t.Fatalf("cache entries after a second profile: %v", entries)
	}
	for _, damage := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"flipped bit", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 1; return c }},
		{"empty", func([]byte) []byte { return nil }},
		// A whole, valid entry of another profile under this profile's key.
		{"another profile's entry", func([]byte) []byte {
			for _, e := range entries {
				if b, _ := os.ReadFile(e); !bytes.HasSuffix(b, want) {
					return b
				}
			}
			t.Fatal("no entry of the second profile")
			return nil
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			path := ""
			for _, e := range entries {
				if b, _ := os.ReadFile(e); bytes.HasSuffix(b, want) {
					path = e
				}
			}
			if path == "" {
				t.Fatal("no cache entry holds the first profile's program")
			}
			b, _ := os.ReadFile(path)
			if err := os.WriteFile(path, damage.fn(b), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Compile(s, dir)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Compile over a %s entry returned a different program (err %v)", damage.name, err)
			}
		})
	}
	// A symlink or a group-writable file at the entry's name is not read.
	path := ""
	for _, e := range entries {
		if b, _ := os.ReadFile(e); bytes.HasSuffix(b, want) {
			path = e
		}
	}
	// The right entry, but not where or how it may be trusted.
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		t.Fatalf("cache entry %q: %v", path, err)
	}
	for _, plant := range []string{"symlink", "group-writable"} {
		t.Run(plant, func(t *testing.T) {
			evil := filepath.Join(t.TempDir(), "evil")
			if err := os.WriteFile(evil, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, ok := readCached(evil, nil); ok {
				t.Fatal("an entry was accepted for the wrong key")
			}
			os.Remove(path)
			if plant == "symlink" {
				if err := os.Symlink(evil, path); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := os.WriteFile(path, b, 0o620); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, 0o620)
			}
			key, _ := cacheKey(s)
			if _, ok := readCached(path, key); ok {
				t.Errorf("a %s cache entry was trusted", plant)
			}
			os.Remove(path)
		})
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(s, dir); err == nil {
		t.Error("a world-writable cache directory was used")
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if prog, err := Compile(&specs.LinuxSeccomp{}, dir); err != nil || prog != nil {
		t.Fatalf("an empty profile installs nothing: %v %v", prog, err)
	}
}
