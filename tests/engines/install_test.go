package engines

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func bw(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, nil, bulwarkBin, args...)
}

func mustBW(t *testing.T, args ...string) string {
	t.Helper()
	r := bw(t, args...)
	if r.code != 0 {
		t.Fatalf("bulwark %v: %v", args, r)
	}
	return r.stdout
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallIsIdempotentKeepsBackupAndUndoes covers the file handling every
// engine shares, on docker's daemon.json: dry-run writes nothing, install
// keeps the user's keys and a backup of the original, a second install
// changes nothing, undo restores the original byte for byte.
func TestInstallIsIdempotentKeepsBackupAndUndoes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "daemon.json")
	orig := "{\"log-level\": \"warn\", \"runtimes\": {\"other\": {\"path\": \"/usr/bin/crun\"}}}\n"
	os.WriteFile(cfg, []byte(orig), 0o644)

	diff := mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--dry-run", "docker")
	if !strings.Contains(diff, "+      \"path\": \""+bulwarkBin+"\"") || read(t, cfg) != orig {
		t.Fatalf("dry-run must print the diff and write nothing:\n%s", diff)
	}
	if _, err := os.Stat(cfg + ".bulwark-backup"); err == nil {
		t.Fatal("dry-run made a backup")
	}

	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "docker")
	first := read(t, cfg)
	var got struct {
		LogLevel string `json:"log-level"`
		Runtimes map[string]struct {
			Path        string   `json:"path"`
			RuntimeArgs []string `json:"runtimeArgs"`
		}
	}
	if err := json.Unmarshal([]byte(first), &got); err != nil {
		t.Fatalf("installed daemon.json is not JSON: %v\n%s", err, first)
	}
	if got.LogLevel != "warn" || got.Runtimes["other"].Path != "/usr/bin/crun" || got.Runtimes["bulwark"].Path != bulwarkBin {
		t.Fatalf("install lost keys or did not add bulwark:\n%s", first)
	}
	if b := read(t, cfg+".bulwark-backup"); b != orig {
		t.Fatalf("backup differs from the original: %q", b)
	}

	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "docker")
	if again := read(t, cfg); again != first {
		t.Fatalf("second install changed the file:\n%s\nvs\n%s", first, again)
	}
	if out := mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--dry-run", "docker"); !strings.Contains(out, "nothing to change") {
		t.Fatalf("dry-run after install should report nothing to change: %q", out)
	}
	if b := read(t, cfg+".bulwark-backup"); b != orig {
		t.Fatalf("second install overwrote the backup: %q", b)
	}

	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--harden", "docker")
	if s := read(t, cfg); !strings.Contains(s, `"--harden"`) {
		t.Fatalf("--harden should add runtimeArgs [\"--harden\"]:\n%s", s)
	}

	mustBW(t, "install", "--undo", "--config", cfg, "docker")
	if s := read(t, cfg); s != orig {
		t.Fatalf("undo did not restore the original:\n%s", s)
	}
	if _, err := os.Stat(cfg + ".bulwark-backup"); err == nil {
		t.Fatal("undo left the backup behind")
	}
	if r := bw(t, "install", "--undo", "--config", cfg, "docker"); r.code == 0 || !strings.Contains(r.stderr, "no backup") {
		t.Fatalf("a second undo should fail naming the missing backup: %v", r)
	}
}

func TestInstallUndoRemovesConfigThatDidNotExist(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "etc", "containerd", "config.toml")
	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "containerd")
	if _, err := os.Stat(cfg); err != nil {
		t.Fatal(err)
	}
	mustBW(t, "install", "--undo", "--config", cfg, "containerd")
	if _, err := os.Stat(cfg); !os.IsNotExist(err) {
		t.Fatalf("undo should remove a config install created: %v", err)
	}
}

func TestInstallDockerConfigAcceptedByDockerd(t *testing.T) {
	requireEngine(t, "dockerd", dockerBin)
	dir := filepath.Join(workDir, "docker-install")
	os.MkdirAll(dir, 0o700)
	cfg := filepath.Join(dir, "daemon.json")
	// A key dockerd is not also given as a flag (it refuses duplicates).
	os.WriteFile(cfg, []byte("{\"max-concurrent-downloads\": 2}\n"), 0o644)
	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--harden", "docker")
	d, err := startDockerd(dir, "--config-file", cfg)
	if err != nil {
		t.Fatalf("dockerd refused the installed daemon.json: %v", err)
	}
	defer d.stop()
	out := runCmd(t, nil, dockerBin, "-H", "unix://"+d.sock, "info", "--format", "{{json .Runtimes}}")
	var rts map[string]struct {
		Path string   `json:"path"`
		Args []string `json:"runtimeArgs"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &rts); err != nil {
		t.Fatalf("docker info: %v: %v", err, out)
	}
	if rts["bulwark"].Path != bulwarkBin || len(rts["bulwark"].Args) != 1 || rts["bulwark"].Args[0] != "--harden" {
		t.Fatalf("docker info does not list bulwark with --harden: %s", out.stdout)
	}
}

func TestInstallContainerdConfigParsedByContainerd(t *testing.T) {
	requireEngine(t, "containerd")
	cfg := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(cfg, []byte("version = 2\n# the user's comment stays\noom_score = -999\n"), 0o644)
	wrapper := filepath.Join(filepath.Dir(cfg), "bulwark-harden")
	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--harden", "--wrapper", wrapper, "--cgroup-driver", "cgroupfs", "containerd")
	if !strings.Contains(read(t, cfg), "# the user's comment stays") {
		t.Fatal("install dropped the user's comment")
	}
	// `config dump` parses the file with containerd's own loader and prints
	// the merged result; it fails on invalid TOML.
	out, err := exec.Command("containerd", "--config", cfg, "config", "dump").CombinedOutput()
	if err != nil {
		t.Fatalf("containerd refused the installed config: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.bulwark]`) ||
		!strings.Contains(s, `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.bulwark-hardened]`) ||
		!strings.Contains(s, `BinaryName = "`+bulwarkBin+`"`) || !strings.Contains(s, `BinaryName = "`+wrapper+`"`) ||
		!strings.Contains(s, "SystemdCgroup = false") || !strings.Contains(s, "oom_score = -999") {
		t.Fatalf("containerd's view of the config lacks the bulwark handlers or the user's setting:\n%s", s)
	}
}

func TestInstallPodmanConfigUsedByPodman(t *testing.T) {
	requireEngine(t, "podman")
	// Podman refuses a runroot longer than 50 characters.
	dir, err := os.MkdirTemp(workDir, "pi")
	if err != nil {
		t.Fatal(err)
	}
	defer removeAll(dir)
	cfg := filepath.Join(dir, "containers.conf")
	os.WriteFile(cfg, []byte("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\n[engine.runtimes]\ncrun = [\"/usr/bin/crun\"]\n"), 0o644)
	wrapper := filepath.Join(dir, "bulwark-harden")
	mustBW(t, "install", "--config", cfg, "--binary", bulwarkBin, "--harden", "--wrapper", wrapper, "podman")
	if w := read(t, wrapper); !strings.Contains(w, bulwarkBin) || !strings.Contains(w, "--harden") {
		t.Fatalf("wrapper does not exec bulwark --harden:\n%s", w)
	}
	cmd := exec.Command("podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--runtime", "bulwark", "info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}")
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+cfg)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "bulwark "+wrapper {
		t.Fatalf("podman with the installed containers.conf should resolve --runtime bulwark to the wrapper: %v\n%s", err, out)
	}
}
