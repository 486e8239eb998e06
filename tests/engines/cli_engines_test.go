package engines

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cliEngine is docker or podman: both take the same commands for what the
// tests do (run, exec, pause, update, stats, top, rm).
type cliEngine struct {
	name   string
	bin    string
	global []string // daemon socket (docker) or private storage (podman)
	// runFlags go on every run: the bulwark runtime and no networking.
	runFlags []string
	image    string
	// stateDir is below where the engine keeps bulwark's --root.
	stateDir string
}

func (e *cliEngine) do(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, nil, e.bin, append(append([]string{}, e.global...), args...)...)
}

func (e *cliEngine) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := e.do(t, args...)
	if r.code != 0 {
		t.Fatalf("%s %v: %v", e.name, args, r)
	}
	return r.stdout
}

// run is `<engine> run --rm <flags> IMAGE ARGS`.
func (e *cliEngine) run(t *testing.T, flags []string, args ...string) result {
	t.Helper()
	a := append([]string{"run", "--rm"}, e.runFlags...)
	a = append(append(a, flags...), e.image)
	return e.do(t, append(a, args...)...)
}

var nameSeq atomic.Int64

// start runs a detached `sleep` container and removes it when the test ends.
func (e *cliEngine) start(t *testing.T, flags ...string) string {
	t.Helper()
	name := fmt.Sprintf("bwe-%d-%d", os.Getpid(), nameSeq.Add(1))
	a := append([]string{"run", "-d", "--name", name}, e.runFlags...)
	a = append(append(a, flags...), e.image, "sleep", "100000")
	e.ok(t, a...)
	t.Cleanup(func() {
		if e.name == "podman" {
			// sleep as pid 1 ignores SIGTERM: skip podman's 10 s grace.
			e.do(t, "rm", "-f", "-t", "0", name)
			return
		}
		e.do(t, "rm", "-f", name)
	})
	return name
}

// shell runs a command line in a running container.
func (e *cliEngine) shell(t *testing.T, name, script string) string {
	t.Helper()
	return strings.TrimSpace(e.ok(t, "exec", name, "sh", "-c", script))
}

func (e *cliEngine) containerID(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.Id}}", name))
}

func (e *cliEngine) status(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(e.ok(t, "inspect", "-f", "{{.State.Status}}", name))
}

// --- docker -----------------------------------------------------------------

var (
	dockerOnce sync.Once
	dockerEng  *cliEngine
	dockerSkip string
)

// dockerBin is Debian's docker CLI: /usr/local/bin may hold another one.
const dockerBin = "/usr/bin/docker"

// startDocker starts one dockerd for the whole test run with its own data
// root, exec root (and so its own managed containerd), socket and pidfile,
// no bridge and no iptables rules, and bulwark added as the "bulwark"
// runtime.
func startDocker(t *testing.T) *cliEngine {
	t.Helper()
	requireEngine(t, "dockerd", dockerBin, "containerd", "containerd-shim-runc-v2")
	dockerOnce.Do(func() {
		var err error
		if dockerEng, err = newDockerEngine(t, "docker", "bulwark", bulwarkBin); err != nil {
			dockerSkip = err.Error()
		}
	})
	if dockerEng == nil {
		t.Fatalf("dockerd did not start: %s", dockerSkip)
	}
	return dockerEng
}

// newDockerEngine starts a dockerd of its own under workDir/dir (stopped
// at exit) with runtime registered as name and the test image imported.
func newDockerEngine(t *testing.T, dir, name, runtime string) (*cliEngine, error) {
	dir = filepath.Join(workDir, dir)
	d, err := startDockerd(dir, "--add-runtime", name+"="+runtime)
	if err != nil {
		return nil, err
	}
	atExit(d.stop)
	e := &cliEngine{name: "docker", bin: dockerBin, global: []string{"-H", "unix://" + d.sock},
		runFlags: []string{"--runtime", name, "--network", "none"}, image: "bwtest:1",
		stateDir: filepath.Join(dir, "exec")}
	if r := e.do(t, "import", rootfsTarball(t), e.image); r.code != 0 {
		return nil, fmt.Errorf("docker import: %v", r)
	}
	return e, nil
}

type dockerd struct {
	dir, sock string
	cmd       *exec.Cmd
}

// startDockerd starts dockerd under dir; extra are more daemon flags.
func startDockerd(dir string, extra ...string) (*dockerd, error) {
	d := &dockerd{dir: dir, sock: filepath.Join(dir, "docker.sock")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := append([]string{
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://" + d.sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--storage-driver", storageDriver(), "--log-level", "warn",
	}, extra...)
	if !slices.Contains(extra, "--config-file") {
		// Without it dockerd reads /etc/docker/daemon.json, which
		// `bulwark install docker` may have changed on this host.
		args = append(args, "--config-file", emptyConfig(dir))
	}
	d.cmd = exec.Command("dockerd", args...)
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	up := waitFor(60*time.Second, func() bool {
		select {
		case <-exited:
			return true // it refused its config: no point waiting
		default:
		}
		return exec.Command(dockerBin, "-H", "unix://"+d.sock, "version").Run() == nil
	})
	select {
	case <-exited:
		up = false
	default:
	}
	if !up {
		b, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
		d.stop()
		return nil, fmt.Errorf("dockerd did not answer within 60s; log:\n%s", lastLines(string(b), 20))
	}
	return d, nil
}

func emptyConfig(dir string) string {
	p := filepath.Join(dir, "daemon.json")
	if _, err := os.Stat(p); err != nil {
		os.WriteFile(p, []byte("{}\n"), 0o644)
	}
	return p
}

// storageDriver is overlay2 where the kernel can mount overlay on the temp
// directory's filesystem, vfs (slow but universal) otherwise.
func storageDriver() string {
	dir, err := os.MkdirTemp(workDir, "ovl")
	if err != nil {
		return "vfs"
	}
	defer removeAll(dir)
	for _, s := range []string{"l", "u", "w", "m"} {
		os.Mkdir(filepath.Join(dir, s), 0o755)
	}
	opts := fmt.Sprintf("lowerdir=%s/l,upperdir=%s/u,workdir=%s/w", dir, dir, dir)
	if exec.Command("mount", "-t", "overlay", "overlay", "-o", opts, dir+"/m").Run() != nil {
		return "vfs"
	}
	exec.Command("umount", dir+"/m").Run()
	return "overlay2"
}

// stop stops dockerd (which stops its containers and its containerd), then
// whatever survived, unmounts what is left and removes the data.
func (d *dockerd) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		stopProcess(d.cmd.Process.Pid, 30*time.Second)
	}
	if b, err := os.ReadFile(filepath.Join(d.dir, "exec", "containerd", "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			stopProcess(pid, 10*time.Second)
		}
	}
	killShimsUnder(d.dir)
	removeAll(d.dir)
}

// killShimsUnder kills containerd shims whose command line names dir (a
// shim outlives a killed daemon by design).
func killShimsUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "containerd-shim") || !strings.Contains(string(b), dir) {
			continue
		}
		stopProcess(pid, 5*time.Second)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// --- podman -----------------------------------------------------------------

var (
	podmanOnce sync.Once
	podmanEng  *cliEngine
	podmanSkip string
)

// startPodman prepares podman with private storage, run and tmp directories,
// the cgroupfs manager (no systemd here), the file events backend (no
// journald) and bulwark as the runtime. Podman has no daemon.
func startPodman(t *testing.T) *cliEngine {
	t.Helper()
	requireEngine(t, "podman", "conmon")
	podmanOnce.Do(func() {
		dir := filepath.Join(workDir, "podman")
		for _, d := range []string{"root", "runroot", "tmp"} {
			os.MkdirAll(filepath.Join(dir, d), 0o700)
		}
		drv := "overlay"
		if storageDriver() == "vfs" {
			drv = "vfs"
		}
		e := &cliEngine{name: "podman", bin: "podman",
			global: []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
				"--tmpdir", filepath.Join(dir, "tmp"), "--runtime", bulwarkBin, "--cgroup-manager", "cgroupfs",
				"--events-backend", "file", "--storage-driver", drv},
			// Podman asks for RLIMIT_NOFILE and RLIMIT_NPROC of 1048576
			// and 32768 when it runs as root; raising a hard limit needs
			// CAP_SYS_RESOURCE, which a root inside a sandbox may lack
			// (runc fails the same way). Limits under the host's hard
			// ones work everywhere.
			runFlags: []string{"--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"},
			image:    "localhost/bwtest:1",
			// Podman passes no --root to a runtime it does not know
			// by name: bulwark uses its default.
			stateDir: "/run/bulwark",
		}
		atExit(func() {
			exec.Command("podman", append(append([]string{}, e.global...), "rm", "-af", "-t", "0")...).Run()
			killShimsUnder(dir)
			removeAll(dir)
		})
		if r := e.do(t, "import", rootfsTarball(t), "bwtest:1"); r.code != 0 {
			podmanSkip = fmt.Sprintf("podman import: %v", r)
			return
		}
		podmanEng = e
	})
	if podmanEng == nil {
		t.Fatalf("podman is not usable: %s", podmanSkip)
	}
	return podmanEng
}

// forEachCLIEngine runs f once per engine as a subtest named after it.
func forEachCLIEngine(t *testing.T, f func(t *testing.T, e *cliEngine)) {
	t.Run("docker", func(t *testing.T) { f(t, startDocker(t)) })
	t.Run("podman", func(t *testing.T) { f(t, startPodman(t)) })
}
