package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
	"github.com/bulwark-sec/bulwark/internal/imagetest"
)

// The person's whole commands next to Docker's and Podman's: pulling a
// multi-layer image from one local registry, and running /bin/true from
// it once it is present. Each engine gets private directories under the
// work dir (dockerd its own data root, exec root and socket; podman its
// own root and runroot), so the host's engines, if any, are not touched.

// engineImageLayers is how many layers the pulled image has: the bench
// rootfs and the rest of incompressible data, so that the pull moves and
// unpacks real bytes rather than measuring round trips only.
const (
	engineImageLayers = 4
	engineLayerFiles  = 64
	engineFileSize    = 128 << 10 // 8 MiB per data layer
)

// engineTool is one of bulwark, docker, podman as the section runs them.
type engineTool struct {
	name string
	// pull and run are the person's commands; reset makes the next pull a
	// fresh one (the image and its layers gone); store is the directory
	// whose growth is the image's disk use.
	pull, run []string
	reset     func() error
	store     string
	note      string // how it was run, for the report
	// fallback is the run command when run fails on this host, and
	// fallbackNote says what it changes.
	fallback     []string
	fallbackNote string
}

type engineTable struct {
	ref        string
	layers     int
	compressed int64 // bytes the registry serves for the layers
	pullRuns   int
	runRuns    int
	pullWall   series
	pullCPU    series
	disk       map[string]int64
	runWall    series
	runCPU     series
	fails      map[string]string
	tools      []*engineTool
	skipped    string
}

// benchEngines pulls and runs an image with bulwark, docker and podman.
func (b *bench) benchEngines() {
	t := &engineTable{pullWall: series{}, pullCPU: series{}, runWall: series{}, runCPU: series{},
		disk: map[string]int64{}, fails: map[string]string{}}
	b.rep.engines = t
	if b.bulwark == nil {
		t.skipped = "bulwark did not build or run"
		return
	}
	host, stop, err := b.benchRegistry(t)
	if err != nil {
		t.skipped = "local registry: " + err.Error()
		return
	}
	defer stop()
	t.ref = host + "/bench/multi:1"
	dir := filepath.Join(b.work, "engines")
	// Traversable, as /var/lib is: the container's root, an unprivileged
	// host uid, reaches its rootfs below the data root.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.skipped = err.Error()
		return
	}
	bwData := filepath.Join(dir, "bulwark")
	bw := &engineTool{name: "bulwark", store: bwData,
		pull:  []string{b.bulwark.bin, "--data-root", bwData, "pull", "-q", t.ref},
		run:   []string{b.bulwark.bin, "--root", b.bulwark.root, "--data-root", bwData, "run", t.ref, "--", "/bin/true"},
		reset: func() error { return os.RemoveAll(bwData) },
		note:  "`bulwark pull -q REF`; `bulwark run REF -- /bin/true` (its defaults: user namespace, seccomp, Landlock, no network)"}
	t.tools = append(t.tools, bw)
	if d, err := b.startBenchDocker(filepath.Join(dir, "docker")); err != nil {
		b.note("docker left out of the image section: %v", err)
	} else {
		defer d.stop()
		t.tools = append(t.tools, d.tool(t.ref))
	}
	// Podman refuses a runroot path longer than 50 bytes.
	if p, err := b.benchPodman("/tmp/bwbp-"+b.tag, t.ref); err != nil {
		b.note("podman left out of the image section: %v", err)
	} else {
		defer p.stop()
		t.tools = append(t.tools, p.tool)
	}
	defer b.restoreHostPaths(b.hostPathsBefore())

	t.pullRuns, t.runRuns = b.n(3, 1), b.n(15, 3)
	b.logf("images: pull %s (%d layers) %d times and run it %d times with %d tools", t.ref, t.layers, t.pullRuns, t.runRuns, len(t.tools))
	for i := 0; i < t.pullRuns && !stopped.Load(); i++ {
		for _, tl := range t.tools {
			if t.fails[tl.name] != "" {
				continue
			}
			if err := tl.reset(); err != nil {
				t.fails[tl.name] = "reset before a pull: " + err.Error()
				continue
			}
			before := diskUse(tl.store)
			r := run(b.work, tl.pull...)
			if !r.ok() {
				t.fails[tl.name] = "pull: " + r.err()
				continue
			}
			t.pullWall.add(tl.name, ms(r.wall))
			t.pullCPU.add(tl.name, ms(r.cpu))
			t.disk[tl.name] = diskUse(tl.store) - before
		}
	}
	// One unrecorded run each first: the first start after a pull
	// builds caches (docker's and podman's layer mounts, bulwark's idmapped
	// layers) that every later run reuses. A tool that cannot run with
	// its first choice of runtime on this host (crun on a v1 hybrid) gets
	// its fallback, named in the report.
	for _, tl := range t.tools {
		if t.fails[tl.name] != "" {
			continue
		}
		r := run(b.work, tl.run...)
		reapOrphans()
		if !r.ok() && tl.fallback != nil {
			b.note("%s: its run failed on this host (%s); measured %s", tl.name, r.err(), tl.fallbackNote)
			tl.run, tl.note = tl.fallback, tl.note+"; **"+tl.fallbackNote+"**"
			r = run(b.work, tl.run...)
			reapOrphans()
		}
		if !r.ok() {
			t.fails[tl.name] = "run: " + r.err()
		}
	}
	for i := 0; i < t.runRuns && !stopped.Load(); i++ {
		for _, tl := range t.tools {
			if t.fails[tl.name] != "" {
				continue
			}
			r := run(b.work, tl.run...)
			reapOrphans()
			if !r.ok() {
				t.fails[tl.name] = "run: " + r.err()
				continue
			}
			t.runWall.add(tl.name, ms(r.wall))
			t.runCPU.add(tl.name, ms(r.cpu))
		}
	}
	b.raw["images_pull_wall_ms"], b.raw["images_pull_cpu_ms"], b.raw["images_disk_bytes"] = t.pullWall, t.pullCPU, t.disk
	b.raw["images_run_wall_ms"], b.raw["images_run_cpu_ms"] = t.runWall, t.runCPU
}

// benchRegistry serves the multi-layer image from a registry in this
// process on 127.0.0.1, which Docker treats as insecure (plain HTTP) by
// default and Podman reaches with --tls-verify=false.
func (b *bench) benchRegistry(t *engineTable) (string, func(), error) {
	base, err := imagetest.LayerFromDir(b.rootfs)
	if err != nil {
		return "", nil, err
	}
	layers := []v1.Layer{base}
	rng := rand.New(rand.NewPCG(1, 2))
	for l := 1; l < engineImageLayers; l++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		dir := fmt.Sprintf("data/%d/", l)
		_ = tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755})
		data := make([]byte, engineFileSize)
		for f := 0; f < engineLayerFiles; f++ {
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			_ = tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%03d", dir, f), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
			_, _ = tw.Write(data)
		}
		if err := tw.Close(); err != nil {
			return "", nil, err
		}
		raw := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
		if err != nil {
			return "", nil, err
		}
		layers = append(layers, layer)
	}
	img, err := imagetest.Stack(runtime.GOARCH, v1.Config{Cmd: []string{"/bin/true"}}, layers...)
	if err != nil {
		return "", nil, err
	}
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return "", nil, err
		}
		t.compressed += s
	}
	t.layers = len(layers)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln)
	host := ln.Addr().String()
	ref, err := name.NewTag(host + "/bench/multi:1")
	if err == nil {
		err = remote.Write(ref, img)
	}
	if err != nil {
		srv.Close()
		return "", nil, fmt.Errorf("push: %w", err)
	}
	return host, func() { srv.Close() }, nil
}

// diskUse is what du counts for dir (blocks, each hardlinked inode once),
// 0 when it does not exist.
func diskUse(dir string) int64 {
	out, err := exec.Command("du", "-sx", "--block-size=1", dir).Output()
	if err != nil {
		return 0
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// engineHostPaths are directories docker and podman create on the host
// whatever their private roots say; those that did not exist before the
// section are removed after it.
var engineHostPaths = []string{"/etc/docker", "/run/docker", "/run/containerd", "/var/lib/containers", "/run/containers", "/run/libpod"}

func (b *bench) hostPathsBefore() map[string]bool {
	m := map[string]bool{}
	for _, p := range engineHostPaths {
		if _, err := os.Lstat(p); err == nil {
			m[p] = true
		}
	}
	return m
}

func (b *bench) restoreHostPaths(existed map[string]bool) {
	for _, p := range engineHostPaths {
		if !existed[p] {
			daemontest.RemoveAll(p)
		}
	}
}

type benchDocker struct {
	dir, sock, cli string
	cmd            *exec.Cmd
}

// startBenchDocker starts a dockerd of its own under dir: no bridge, no
// iptables, its own containerd, overlay2, runc its default runtime.
func (b *bench) startBenchDocker(dir string) (*benchDocker, error) {
	cli, err := exec.LookPath("docker")
	if err == nil {
		// Debian's CLI goes with Debian's dockerd; /usr/local/bin may hold another.
		if _, serr := os.Stat("/usr/bin/docker"); serr == nil {
			cli = "/usr/bin/docker"
		}
	}
	dockerd, derr := exec.LookPath("dockerd")
	if err != nil || derr != nil {
		return nil, fmt.Errorf("docker or dockerd not installed (scripts/install-engines.sh)")
	}
	d := &benchDocker{dir: dir, sock: filepath.Join(dir, "docker.sock"), cli: cli}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	d.cmd = exec.Command(dockerd, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.sock, "--pidfile", filepath.Join(dir, "docker.pid"), "--config-file", cfg,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--storage-driver", "overlay2", "--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dockerd: %w", err)
	}
	if !daemontest.WaitFor(60*time.Second, func() bool { return exec.Command(cli, "-H", "unix://"+d.sock, "version").Run() == nil }) {
		d.stop()
		return nil, fmt.Errorf("dockerd did not answer within 60s (log in %s)", log.Name())
	}
	return d, nil
}

func (d *benchDocker) docker(args ...string) []string {
	return append([]string{d.cli, "-H", "unix://" + d.sock}, args...)
}

func (d *benchDocker) tool(ref string) *engineTool {
	return &engineTool{name: "docker", store: filepath.Join(d.dir, "data"),
		pull: d.docker("pull", "-q", ref),
		run:  d.docker("run", "--rm", "--network", "none", ref, "/bin/true"),
		reset: func() error {
			exec.Command(d.cli, "-H", "unix://"+d.sock, "rmi", "-f", ref).Run()
			return nil
		},
		note: "`docker pull -q REF` (127.0.0.1 is an insecure registry by default); `docker run --rm --network none REF /bin/true` through dockerd, containerd and runc (dockerd runs without a bridge here)"}
}

func (d *benchDocker) stop() {
	if d.cmd != nil && d.cmd.Process != nil {
		stopChild(d.cmd.Process.Pid, 30*time.Second)
	}
	// Its containerd, orphaned to us (the subreaper) if it outlived dockerd.
	if b, err := os.ReadFile(filepath.Join(d.dir, "exec", "containerd", "containerd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			stopChild(pid, 10*time.Second)
		}
	}
	reapOrphans()
	daemontest.RemoveAll(d.dir)
}

// stopChild sends SIGTERM, then SIGKILL after grace, and reaps pid if it
// is ours (a daemon we started, or one orphaned to us): a zombie would
// still answer kill(pid, 0).
func stopChild(pid int, grace time.Duration) {
	if unix.Kill(pid, unix.SIGTERM) != nil {
		return
	}
	if _, ok := waitGone(pid, grace); !ok {
		unix.Kill(pid, unix.SIGKILL)
		waitGone(pid, 5*time.Second)
	}
}

type benchPodman struct {
	dir  string
	tool *engineTool
}

// benchPodman prepares podman with private storage and crun as its
// runtime (the cgroupfs manager and the file events backend: no systemd or
// journald needed).
func (b *bench) benchPodman(dir, ref string) (*benchPodman, error) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podman not installed (scripts/install-engines.sh)")
	}
	crun, err := exec.LookPath("crun")
	if err != nil {
		return nil, fmt.Errorf("crun not installed")
	}
	for _, d := range []string{"root", "runroot", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	g := []string{podman, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--storage-driver", "overlay"}
	with := func(args ...string) []string { return append(append([]string{}, g...), args...) }
	// As root podman asks for RLIMIT_NOFILE and RLIMIT_NPROC above the
	// hard limits, which needs CAP_SYS_RESOURCE a sandboxed root may
	// lack; limits under the host's work everywhere (tests/engines does
	// the same).
	limits := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	p := &benchPodman{dir: dir}
	p.tool = &engineTool{name: "podman", store: filepath.Join(dir, "root"),
		pull: with("pull", "-q", "--tls-verify=false", ref),
		run:  with(append(append([]string{"run", "--rm", "--runtime", crun, "--network", "none"}, limits...), ref, "/bin/true")...),
		reset: func() error {
			exec.Command(g[0], append(g[1:], "rmi", "-f", ref)...).Run()
			return nil
		},
		note: "`podman pull -q --tls-verify=false REF`; `podman run --rm --runtime crun --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 REF /bin/true` (conmon, crun; the cgroupfs manager; the limits because podman as root asks for more than the hard limits here)"}
	if runc, err := exec.LookPath("runc"); err == nil {
		p.tool.fallback = with(append(append([]string{"run", "--rm", "--runtime", runc, "--network", "none"}, limits...), ref, "/bin/true")...)
		p.tool.fallbackNote = "podman with `--runtime runc`, as crun cannot run containers on this host"
	}
	return p, nil
}

func (p *benchPodman) stop() {
	reapOrphans()
	// Podman's overlay driver mounts its storage on itself.
	for _, m := range daemontest.MountsUnder(p.dir) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	daemontest.RemoveAll(p.dir)
}
