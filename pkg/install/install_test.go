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

// Undo removes exactly what install wrote: the config as it was, the
// backup, and the --harden and --vm wrapper scripts, found from install's
// own record whatever flags undo is given; a wrapper another engine's
// install still uses is kept until that one is undone too. A file at a
// wrapper's path that install did not write is never overwritten.
func TestUndoRemovesTheWrapperScriptsInstallWrote(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(bin, "bulwark-mine")
	if err := os.WriteFile(mine, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	harden, vm := filepath.Join(bin, "bulwark-harden"), filepath.Join(bin, "bulwark-vm")
	podman := filepath.Join(engineDir(t), "containers.conf")
	containerd := filepath.Join(engineDir(t), "config.toml")
	// recordedElsewhere looks at the engines' default configs: point them
	// at this test's files.
	saved := DefaultConfig
	DefaultConfig = map[Engine]string{Docker: filepath.Join(engineDir(t), "daemon.json"), Podman: podman, Containerd: containerd, CRIO: filepath.Join(engineDir(t), "10-bulwark.conf")}
	t.Cleanup(func() { DefaultConfig = saved })

	install := func(o Options) {
		t.Helper()
		o.Binary = filepath.Join(bin, "bulwark")
		c, err := Plan(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := Apply(c); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }
	install(Options{Engine: Podman, Harden: true, VM: true})
	install(Options{Engine: Containerd, Harden: true, Wrapper: harden, CgroupDriver: CgroupDriverCgroupfs})
	for _, p := range []string{podman, containerd, harden, vm} {
		if !exists(p) {
			t.Fatalf("install did not write %s", p)
		}
	}

	msg, err := Undo(Options{Engine: Podman})
	if err != nil {
		t.Fatal(err)
	}
	if exists(podman) || exists(podman+wrappersSuffix) || exists(podman+absentSuffix) || exists(vm) {
		t.Errorf("undo of podman left its config, record or --vm wrapper: %s", msg)
	}
	if !exists(harden) || !strings.Contains(msg, "kept wrapper "+harden+": the install in "+containerd+" uses it too") {
		t.Errorf("undo of podman removed the wrapper containerd's install uses, or did not say why it kept it: %q", msg)
	}
	msg, err = Undo(Options{Engine: Containerd})
	if err != nil {
		t.Fatal(err)
	}
	if exists(containerd) || exists(containerd+wrappersSuffix) || exists(harden) || !strings.Contains(msg, "removed wrapper "+harden) {
		t.Errorf("undo of containerd left its config, record or wrapper: %q", msg)
	}
	ents, _ := os.ReadDir(bin)
	if len(ents) != 1 || ents[0].Name() != "bulwark-mine" {
		t.Errorf("bin holds %v after both undos, want only the file install never wrote", ents)
	}

	// Someone else's file at the wrapper's path: install refuses and
	// writes nothing.
	if err := os.WriteFile(harden, []byte("#!/bin/sh\necho mine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Plan(Options{Engine: Podman, Harden: true, Wrapper: harden, Binary: filepath.Join(bin, "bulwark")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Apply(c); err == nil || !strings.Contains(err.Error(), harden) {
		t.Errorf("install over a file it did not write: %v, want a refusal naming %s", err, harden)
	}
	if b, _ := os.ReadFile(harden); string(b) != "#!/bin/sh\necho mine\n" || exists(podman) || exists(podman+absentSuffix) {
		t.Errorf("the refused install changed something: wrapper %q", b)
	}
	if _, err := Plan(Options{Engine: Podman, Harden: true, Wrapper: "bulwark-harden", Binary: filepath.Join(bin, "bulwark")}); err == nil || !strings.Contains(err.Error(), "--wrapper") {
		t.Errorf("a relative --wrapper: %v, want an error naming the flag", err)
	}
}
