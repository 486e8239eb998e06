// Command benchrun measures Bulwark next to runc and crun on one machine in
// one run and writes docs/benchmarks.md. bench/run.sh prepares the host and
// calls it; see docs/benchmarks.md for the method.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stopped is set by SIGINT/SIGTERM; measurement loops check it.
var stopped atomic.Bool

type rtime struct {
	name, bin, version string
	root               string // --root state dir, private to this run
}

type bench struct {
	work, rootfs, spin string
	stateBase          string // parent of the runtimes' --root dirs (on /run)
	stateTmpfs         bool   // we mounted a tmpfs on stateBase (unmounted by cleanup)
	tag                string
	cgParent           string
	seq                int
	rts                []*rtime
	bulwark            *rtime
	quick              bool
	onlyImages         bool // -only images: section 7 alone
	onlyVM             bool // -only vm: section 8 alone
	docker, bwProf     *specs.LinuxSeccomp
	notes              []string
	raw                map[string]any
	rep                *report
	// The load average shows whether something else competed for the
	// cores while we measured; the numbers are only as quiet as the host.
	loadBefore, loadAfter string
}

func (b *bench) note(format string, a ...any) {
	s := fmt.Sprintf(format, a...)
	fmt.Fprintln(os.Stderr, "note:", s)
	b.notes = append(b.notes, s)
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// newID gives every container of every run a fresh id, so a leftover from a
// failed step can never be mistaken for the next container.
func (b *bench) newID(rt *rtime) string {
	b.seq++
	return fmt.Sprintf("bb-%s-%s-%d", b.tag, rt.name, b.seq)
}

// bundle writes a bundle for id. All runtimes get cgroupsPath
// /<parent>/<id>, absolute, so each puts the container in the same place
// in every hierarchy and cleanup knows where to look.
func (b *bench) bundle(id string, args []string, l layers) (string, error) {
	dir := filepath.Join(b.work, "bundles", id)
	return dir, writeBundle(dir, plainSpec(b.rootfs, args, b.cgParent+"/"+id, l))
}

func (b *bench) rmBundle(dir string) { os.RemoveAll(dir) }

func (b *bench) cmd(rt *rtime, args ...string) []string {
	return append([]string{rt.bin, "--root", rt.root}, args...)
}

// runOnce is `RT run -b BUNDLE ID` to exit. runc and crun delete a
// container themselves after a foreground run; a failed one is force-deleted.
func (b *bench) runOnce(rt *rtime, args []string, l layers) result {
	id := b.newID(rt)
	dir, err := b.bundle(id, args, l)
	if err != nil {
		return result{code: -1, stderr: err.Error()}
	}
	r := run(b.work, b.cmd(rt, "run", "-b", dir, id)...)
	if !r.ok() {
		run(b.work, b.cmd(rt, "delete", "-f", id)...)
	}
	reapOrphans()
	b.rmBundle(dir)
	return r
}

func main() {
	var (
		out       = flag.String("out", "docs/benchmarks.md", "markdown report to write")
		rawOut    = flag.String("raw", "bench/results/raw.json", "raw samples (JSON)")
		busybox   = flag.String("busybox", "/bin/busybox", "static busybox for the rootfs")
		spin      = flag.String("spin", "", "static spin payload binary")
		bulwark   = flag.String("bulwark", "bin/bulwark", "bulwark binary; skipped when absent")
		dockerSec = flag.String("docker-seccomp", "bench/profiles/docker-default.json", "Docker's default seccomp profile")
		quick     = flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "short smoke run")
		only      = flag.String("only", "", "\"images\": only section 7, \"vm\": only section 8 (give -out a scratch file)")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		fatal("benchrun must run as root")
	}
	if *spin == "" {
		fatal("-spin is required")
	}
	// Orphaned container inits (create/start) must come back to us, not
	// to the host's init: we reap them, count their CPU and know they are gone.
	if err := becomeSubreaper(); err != nil {
		fatal("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	tagb := make([]byte, 3)
	rand.Read(tagb)
	b := &bench{tag: hex.EncodeToString(tagb), quick: *quick, raw: map[string]any{}, rep: &report{}}
	b.cgParent = "/bulwark-bench-" + b.tag
	work, err := os.MkdirTemp("", "bulwark-bench-")
	if err != nil {
		fatal("%v", err)
	}
	// With a user namespace the container's root is an unmapped host uid
	// and must still traverse to the rootfs; MkdirTemp makes 0700.
	os.Chmod(work, 0o755)
	b.work = work
	b.rootfs = filepath.Join(work, "rootfs")
	if err := buildRootfs(b.rootfs, *busybox, *spin); err != nil {
		fatal("rootfs: %v", err)
	}
	b.spin = *spin
	if b.docker, err = loadSeccomp(*dockerSec); err != nil {
		fatal("docker seccomp profile: %v", err)
	}

	for _, n := range []string{"runc", "crun"} {
		p, err := exec.LookPath(n)
		if err != nil {
			fatal("%s not found (bench/run.sh installs it)", n)
		}
		b.rts = append(b.rts, &rtime{name: n, bin: p})
	}
	if abs, err := filepath.Abs(*bulwark); err == nil {
		if st, err := os.Stat(abs); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			b.bulwark = &rtime{name: "bulwark", bin: abs}
			b.rts = append([]*rtime{b.bulwark}, b.rts...)
		} else {
			b.note("bulwark: %s does not exist; measured runc and crun only", *bulwark)
		}
	}
	// State roots go where engines keep them: Docker, containerd and
	// Podman all hand their runtime a --root under /run, a tmpfs on a
	// standard host. On a disk every state file the runtime creates costs
	// a journaled inode, which measures the disk rather than the runtime,
	// so where /run is not a tmpfs the state roots get a private one.
	b.stateBase = work
	if st, err := os.MkdirTemp("/run", "bulwark-bench-state-"); err == nil {
		b.stateBase = st
	}
	var sfs syscall.Statfs_t
	if syscall.Statfs(b.stateBase, &sfs) == nil && sfs.Type != 0x01021994 { // TMPFS_MAGIC
		if err := syscall.Mount("tmpfs", b.stateBase, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "mode=0755,size=256m"); err == nil {
			b.stateTmpfs = true
			b.note("/run is not a tmpfs on this host; the runtimes' state roots were on a tmpfs the harness mounted at %s for the run (unmounted after)", b.stateBase)
		} else {
			b.note("the runtimes' state roots are on disk (%s): mounting a tmpfs there failed: %v", b.stateBase, err)
		}
	}
	for _, rt := range b.rts {
		rt.root = filepath.Join(b.stateBase, "state-"+rt.name)
		os.MkdirAll(rt.root, 0o700)
		o, _ := exec.Command(rt.bin, "--version").CombinedOutput()
		rt.version = firstLine(string(o))
	}
	b.filterWorking()
	if b.bulwark != nil {
		b.loadBulwarkProfile()
	}

	// Ctrl-C also reaches the runtime in flight (same process group); the
	// loops then end and cleanup still runs, so an aborted run leaves the
	// host as clean as a finished one, but writes no report.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		stopped.Store(true)
		fmt.Fprintln(os.Stderr, "benchrun: interrupted, cleaning up")
	}()
	b.loadBefore = loadavg()
	start := time.Now()
	b.onlyImages = *only == "images"
	b.onlyVM = *only == "vm"
	if b.onlyVM {
		b.benchVM()
	}
	if !b.onlyImages && !b.onlyVM {
		b.benchRun()
		b.benchHyperfine()
		b.benchLifecycle()
		b.benchMemory()
		b.benchConcurrent()
		b.benchSeccomp()
		b.benchLayers()
		b.benchVM()
	}
	if !b.onlyVM {
		b.benchEngines()
	}
	b.rep.elapsed = time.Since(start)
	b.loadAfter = loadavg()
	b.rep.clean = b.cleanup()
	if stopped.Load() {
		if !b.rep.clean.ok() {
			fmt.Fprintf(os.Stderr, "benchrun: not clean: %+v\n", b.rep.clean)
		}
		os.Exit(130)
	}

	md := b.render()
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		fatal("%v", err)
	}
	os.MkdirAll(filepath.Dir(*rawOut), 0o755)
	if j, err := json.MarshalIndent(b.raw, "", " "); err == nil {
		os.WriteFile(*rawOut, j, 0o644)
	}
	b.logf("wrote %s (%s of measurements)", *out, b.rep.elapsed.Round(time.Second))
	if !b.rep.clean.ok() {
		os.Exit(1)
	}
}

// filterWorking drops a runtime that cannot run the plain bundle at all,
// with its error in the report, so one broken runtime does not void the run.
func (b *bench) filterWorking() {
	var ok []*rtime
	for _, rt := range b.rts {
		r := b.runOnce(rt, []string{"/bin/true"}, layers{})
		if r.ok() {
			ok = append(ok, rt)
			continue
		}
		b.note("%s cannot run the plain bundle, left out of every table: %s", rt.name, r.err())
		if rt == b.bulwark {
			b.bulwark = nil
		}
	}
	if len(ok) == 0 {
		// The state tmpfs and the probes' cgroups exist by now.
		b.cleanup()
		fatal("no runtime works")
	}
	b.rts = ok
}

// loadBulwarkProfile takes linux.seccomp from `bulwark spec --profile
// default`. runc's `spec` writes config.json into the cwd rather than
// stdout, so both places are tried.
func (b *bench) loadBulwarkProfile() {
	dir, _ := os.MkdirTemp(b.work, "spec-")
	c := exec.Command(b.bulwark.bin, "spec", "--profile", "default")
	c.Dir = dir
	o, err := c.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg += ": " + firstLine(string(ee.Stderr))
		}
		b.note("`bulwark spec --profile default` failed (%s); Bulwark's seccomp profile not measured", msg)
		return
	}
	var s specs.Spec
	if json.Unmarshal(o, &s) != nil {
		f, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil || json.Unmarshal(f, &s) != nil {
			b.note("bulwark spec --profile default printed no OCI spec; Bulwark's seccomp profile not measured")
			return
		}
	}
	if s.Linux == nil || s.Linux.Seccomp == nil {
		b.note("bulwark spec --profile default has no linux.seccomp; Bulwark's seccomp profile not measured")
		return
	}
	b.bwProf = s.Linux.Seccomp
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "benchrun: "+format+"\n", a...)
	os.Exit(1)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
