package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// engineDir is a directory for an engine's config as install expects it:
// owned by whoever runs the test (root in CI), mode 0755.
func engineDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "docker")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// A symlink planted at the temporary file's name must not carry the
// engine's new config onto the file it points at.
func TestApplyDoesNotFollowAPlantedSymlinkAtTheTempName(t *testing.T) {
	dir := engineDir(t)
	victim := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(victim, []byte("root:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"debug": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{cfg + ".bulwark-tmp", cfg + backupSuffix + ".bulwark-tmp"} {
		if err := os.Symlink(victim, name); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Plan(Options{Engine: Docker, Config: cfg, Binary: "/usr/local/bin/bulwark"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "root:secret\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if b, _ := os.ReadFile(cfg); !strings.Contains(string(b), "/usr/local/bin/bulwark") {
		t.Errorf("daemon.json not updated: %s", b)
	}
	if fi, err := os.Lstat(cfg); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Errorf("daemon.json is %v (%v), want a regular 0644 file", fi.Mode(), err)
	}
}

func TestApplyRefusesAnUnsafeDirectory(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
	}{
		{name: "group-writable", mode: 0o775},
		{name: "world-writable", mode: 0o777},
		{name: "world-writable sticky", mode: 0o1777},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := engineDir(t)
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "daemon.json")
			c, err := Plan(Options{Engine: Docker, Config: cfg, Binary: "/usr/local/bin/bulwark"})
			if err != nil {
				t.Fatal(err)
			}
			err = Apply(c)
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "writable") {
				t.Fatalf("Apply in a %s directory: %v, want an error naming %s", tc.name, err, dir)
			}
			if _, err := os.Stat(cfg); err == nil {
				t.Errorf("%s was written despite the refusal", cfg)
			}
		})
	}
}
