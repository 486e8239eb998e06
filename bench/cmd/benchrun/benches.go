package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func (b *bench) n(full, quick int) int {
	if b.quick {
		return quick
	}
	return full
}

var trueArgs = []string{"/bin/true"}

// interleave runs fn for every runtime in turn, n rounds, so slow drifts of
// the host (frequency, page cache, a neighbour) hit all runtimes alike.
func (b *bench) interleave(n int, fn func(i int, rt *rtime)) {
	for i := 0; i < n && !stopped.Load(); i++ {
		for _, rt := range b.rts {
			fn(i, rt)
		}
	}
}

type failures struct {
	n     map[string]int
	first map[string]string
}

func newFailures() *failures { return &failures{n: map[string]int{}, first: map[string]string{}} }

func (f *failures) add(name, msg string) {
	f.n[name]++
	if f.first[name] == "" {
		f.first[name] = msg
	}
}

func (b *bench) benchRun() {
	runs := b.n(50, 8)
	b.logf("run /bin/true: %d interleaved runs per runtime", runs)
	b.interleave(2, func(_ int, rt *rtime) { b.runOnce(rt, trueArgs, layers{}) }) // warm caches, not recorded
	wall, cpu, rss := series{}, series{}, series{}
	fails := newFailures()
	b.interleave(runs, func(_ int, rt *rtime) {
		r := b.runOnce(rt, trueArgs, layers{})
		if !r.ok() {
			fails.add(rt.name, r.err())
			return
		}
		wall.add(rt.name, ms(r.wall))
		cpu.add(rt.name, ms(r.cpu))
		rss.add(rt.name, float64(r.maxRSS))
	})
	b.raw["run_wall_ms"], b.raw["run_cpu_ms"], b.raw["run_maxrss_kib"] = wall, cpu, rss
	b.rep.run = runTable{runs: runs, wall: wall, cpu: cpu, fails: fails}
}

func (b *bench) benchHyperfine() {
	hf, err := exec.LookPath("hyperfine")
	if err != nil {
		b.note("hyperfine not found; no cross-check")
		return
	}
	runs := b.n(30, 5)
	b.logf("hyperfine cross-check: %d runs per runtime, not interleaved", runs)
	args := []string{"-S", "sh", "--style", "none", "--warmup", "3", "--runs", strconv.Itoa(runs)}
	out := filepath.Join(b.work, "hyperfine.json")
	args = append(args, "--export-json", out)
	var names []string
	for _, rt := range b.rts {
		// One bundle per runtime, reused: hyperfine runs are sequential,
		// and each `run` removes its cgroup on exit. The shell's $$ keeps
		// the id unique per run.
		id := fmt.Sprintf("bb-%s-hf-%s", b.tag, rt.name)
		dir, err := b.bundle(id, trueArgs, layers{})
		if err != nil {
			b.note("hyperfine bundle: %v", err)
			return
		}
		args = append(args, "-n", rt.name, fmt.Sprintf("%s --root %s run -b %s %s-$$", rt.bin, rt.root, dir, id))
		names = append(names, rt.name)
	}
	c := exec.Command(hf, args...)
	if o, err := c.CombinedOutput(); err != nil {
		b.note("hyperfine failed: %v: %s", err, firstLine(string(o)))
		return
	}
	j, err := os.ReadFile(out)
	if err != nil {
		b.note("hyperfine: %v", err)
		return
	}
	var res struct {
		Results []struct {
			Command string  `json:"command"`
			Median  float64 `json:"median"`
			Mean    float64 `json:"mean"`
			Stddev  float64 `json:"stddev"`
			User    float64 `json:"user"`
			System  float64 `json:"system"`
		} `json:"results"`
	}
	if err := json.Unmarshal(j, &res); err != nil {
		b.note("hyperfine json: %v", err)
		return
	}
	for i, r := range res.Results {
		b.rep.hyperfine = append(b.rep.hyperfine, hfRow{name: names[i], median: r.Median * 1000, mean: r.Mean * 1000,
			stddev: r.Stddev * 1000, cpu: (r.User + r.System) * 1000})
	}
	b.rep.hyperfineRuns = runs
	b.raw["hyperfine"] = json.RawMessage(j)
}

func (b *bench) benchLifecycle() {
	runs := b.n(40, 6)
	b.logf("create/start/delete: %d interleaved rounds", runs)
	t := lifeTable{runs: runs, wall: map[string]series{}, cpu: map[string]series{}, fails: newFailures(), createdPSS: series{}}
	for _, k := range []string{"create", "start", "delete", "init"} {
		t.wall[k], t.cpu[k] = series{}, series{}
	}
	b.interleave(runs, func(_ int, rt *rtime) {
		id := b.newID(rt)
		dir, err := b.bundle(id, trueArgs, layers{})
		if err != nil {
			t.fails.add(rt.name, err.Error())
			return
		}
		defer b.rmBundle(dir)
		pidFile := filepath.Join(b.work, id+".pid")
		defer os.Remove(pidFile)
		fail := func(step string, r result) {
			t.fails.add(rt.name, step+": "+r.err())
			run(b.work, b.cmd(rt, "delete", "-f", id)...)
			reapOrphans()
		}
		rc := run(b.work, b.cmd(rt, "create", "-b", dir, "--pid-file", pidFile, id)...)
		if !rc.ok() {
			fail("create", rc)
			return
		}
		pid := readPid(pidFile)
		if pid <= 0 {
			pid = b.statePid(rt, id)
		}
		// The created container waits on its exec fifo: whatever is
		// resident now is what an idle created container costs.
		var pss int64
		for _, p := range descendants(os.Getpid()) {
			_, q := memOf(p)
			pss += q
		}
		rs := run(b.work, b.cmd(rt, "start", id)...)
		if !rs.ok() {
			fail("start", rs)
			return
		}
		initCPU, gone := waitGone(pid, 10*time.Second)
		if !gone {
			fail("wait", result{code: -1, stderr: fmt.Sprintf("container init %d still alive 10s after start", pid)})
			return
		}
		rd := run(b.work, b.cmd(rt, "delete", id)...)
		if !rd.ok() {
			fail("delete", rd)
			return
		}
		reapOrphans()
		for k, r := range map[string]result{"create": rc, "start": rs, "delete": rd} {
			t.wall[k].add(rt.name, ms(r.wall))
			t.cpu[k].add(rt.name, ms(r.cpu))
		}
		t.cpu["init"].add(rt.name, ms(initCPU))
		t.createdPSS.add(rt.name, float64(pss))
	})
	b.raw["lifecycle_wall_ms"], b.raw["lifecycle_cpu_ms"], b.raw["created_pss_kib"] = t.wall, t.cpu, t.createdPSS
	b.rep.life = t
}

func readPid(path string) int {
	s, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(s)))
	return p
}

func (b *bench) statePid(rt *rtime, id string) int {
	r := run(b.work, b.cmd(rt, "state", id)...)
	var st struct {
		Pid int `json:"pid"`
	}
	json.Unmarshal([]byte(r.stdout), &st)
	return st.Pid
}

func (b *bench) benchMemory() {
	runs := b.n(10, 3)
	b.logf("memory: %d sampled runs per runtime", runs)
	t := memTable{runs: runs, pss: series{}, rss: series{}, procs: series{}, maxRSS: series{}, fails: newFailures()}
	b.interleave(runs, func(_ int, rt *rtime) {
		s := startSampler(200 * time.Microsecond)
		r := b.runOnce(rt, trueArgs, layers{})
		s.finish()
		if !r.ok() {
			t.fails.add(rt.name, r.err())
			return
		}
		t.pss.add(rt.name, float64(s.peakPSS))
		t.rss.add(rt.name, float64(s.peakRSS))
		t.procs.add(rt.name, float64(s.peakN))
		t.maxRSS.add(rt.name, float64(r.maxRSS))
		if s.samples > 1 {
			t.gap = append(t.gap, ms(s.span)/float64(s.samples-1))
		}
	})
	b.raw["mem_peak_pss_kib"], b.raw["mem_peak_rss_kib"], b.raw["mem_maxrss_kib"] = t.pss, t.rss, t.maxRSS
	b.rep.mem = t
}

// benchConcurrent starts n foreground `run`s at once and waits for all.
func (b *bench) benchConcurrent() {
	n, reps := 50, b.n(3, 1)
	b.logf("concurrency: %d containers at once, %d rounds", n, reps)
	t := concTable{n: n, reps: reps, total: series{}, cpu: series{}, fails: newFailures(), failed: series{}}
	b.interleave(reps, func(_ int, rt *rtime) {
		ids := make([]string, n)
		dirs := make([]string, n)
		for i := range ids {
			ids[i] = b.newID(rt)
			var err error
			if dirs[i], err = b.bundle(ids[i], trueArgs, layers{}); err != nil {
				t.fails.add(rt.name, err.Error())
				return
			}
		}
		procs := map[int]*proc{}
		idOf := map[int]string{}
		first := time.Now()
		failed := 0
		for i := range ids {
			p, err := spawn(b.work, b.cmd(rt, "run", "-b", dirs[i], ids[i]))
			if err != nil {
				failed++
				t.fails.add(rt.name, err.Error())
				continue
			}
			procs[p.pid], idOf[p.pid] = p, ids[i]
		}
		var last time.Time
		var cpu time.Duration
		deadline := time.Now().Add(2 * time.Minute)
		for len(procs) > 0 && time.Now().Before(deadline) {
			var ws syscall.WaitStatus
			var ru syscall.Rusage
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
			if err != nil && err != syscall.EINTR || pid == 0 {
				// Polling rather than a blocking wait keeps the deadline;
				// 200us is below the resolution that matters here.
				time.Sleep(200 * time.Microsecond)
				continue
			}
			if pid < 0 {
				continue
			}
			now := time.Now()
			cpu += rusageCPU(&ru)
			p, mine := procs[pid]
			if !mine {
				continue // an orphaned container process: CPU counted, nothing else
			}
			delete(procs, pid)
			last = now
			if r := p.finish(now, ws, &ru); !r.ok() {
				failed++
				t.fails.add(rt.name, r.err())
				run(b.work, b.cmd(rt, "delete", "-f", idOf[pid])...)
			}
		}
		for pid, p := range procs {
			syscall.Kill(pid, syscall.SIGKILL)
			p.wait()
			failed++
			t.fails.add(rt.name, "still running after 2 minutes, killed")
			run(b.work, b.cmd(rt, "delete", "-f", idOf[pid])...)
		}
		reapOrphans()
		for _, d := range dirs {
			b.rmBundle(d)
		}
		t.total.add(rt.name, ms(last.Sub(first)))
		t.cpu.add(rt.name, ms(cpu))
		t.failed.add(rt.name, float64(failed))
	})
	b.raw["concurrent_total_ms"], b.raw["concurrent_failed"] = t.total, t.failed
	b.rep.conc = t
}

type profile struct {
	name string
	s    *specs.LinuxSeccomp
}

func (b *bench) profiles() []profile {
	ps := []profile{{"no filter", nil}, {"Docker default", b.docker}}
	if b.bwProf != nil {
		ps = append(ps, profile{"Bulwark default", b.bwProf})
	}
	return ps
}

func parseSpin(out string) (float64, bool) {
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != "getppid" {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[2], 64)
	return v, err == nil
}

func (b *bench) benchSeccomp() {
	calls, reps := b.n(10_000_000, 1_000_000), b.n(5, 2)
	b.logf("seccomp: %d getppid calls, %d interleaved rounds", calls, reps)
	args := []string{"/bin/spin", "getppid", strconv.Itoa(calls)}
	t := secTable{calls: calls, reps: reps, ns: map[string]series{}, fails: map[string]*failures{}, host: nil}
	ps := b.profiles()
	for _, p := range ps {
		t.ns[p.name] = series{}
		t.fails[p.name] = newFailures()
		t.profiles = append(t.profiles, p.name)
	}
	dead := map[string]bool{}
	for i := 0; i < reps && !stopped.Load(); i++ {
		if r := run(b.work, b.spin, "getppid", strconv.Itoa(calls)); r.ok() {
			if v, ok := parseSpin(r.stdout); ok {
				t.host = append(t.host, v)
			}
		}
		for _, p := range ps {
			for _, rt := range b.rts {
				key := p.name + "/" + rt.name
				if dead[key] {
					continue
				}
				r := b.runOnce(rt, args, layers{seccomp: p.s})
				v, ok := parseSpin(r.stdout)
				if !r.ok() || !ok {
					// A runtime that refuses a profile will refuse it
					// every time; one failure is enough to report.
					dead[key] = true
					t.fails[p.name].add(rt.name, r.err())
					continue
				}
				t.ns[p.name].add(rt.name, v)
			}
		}
	}
	// Untimed: the tracer stops the payload for a moment.
	t.insns = map[string]map[string]string{}
	for _, p := range ps {
		t.insns[p.name] = map[string]string{}
		for _, rt := range b.rts {
			if !dead[p.name+"/"+rt.name] && !stopped.Load() {
				t.insns[p.name][rt.name] = b.probeFilter(rt, p, calls)
			}
		}
	}
	b.raw["seccomp_ns_per_call"], b.raw["seccomp_host_ns"], b.raw["seccomp_bpf_insns"] = t.ns, t.host, t.insns
	b.rep.sec = t
}

func (b *bench) benchLayers() {
	runs := b.n(30, 4)
	ls := []layers{{}, {userns: true}, {seccomp: b.docker}, {userns: true, seccomp: b.docker}}
	names := []string{"plain", "+ user namespace", "+ seccomp (Docker default)", "+ user namespace + seccomp (Docker default)"}
	if b.bwProf != nil {
		ls = append(ls, layers{userns: true, seccomp: b.bwProf})
		names = append(names, "+ user namespace + seccomp (Bulwark default)")
	}
	b.logf("hardening layers: %d layer sets, %d interleaved runs", len(ls), runs)
	t := layerTable{runs: runs, names: names, wall: map[string]series{}, cpu: map[string]series{}, fails: map[string]*failures{}}
	for _, n := range names {
		t.wall[n], t.cpu[n], t.fails[n] = series{}, series{}, newFailures()
	}
	extras := b.bulwarkExtras()
	dead := map[string]bool{}
	for i := 0; i < runs && !stopped.Load(); i++ {
		for li, l := range ls {
			for _, rt := range b.rts {
				key := names[li] + "/" + rt.name
				if dead[key] {
					continue
				}
				r := b.runOnce(rt, trueArgs, l)
				if !r.ok() {
					dead[key] = true
					t.fails[names[li]].add(rt.name, r.err())
					continue
				}
				t.wall[names[li]].add(rt.name, ms(r.wall))
				t.cpu[names[li]].add(rt.name, ms(r.cpu))
			}
		}
		for _, x := range extras {
			r := x.run()
			if !r.ok() {
				x.fails++
				continue
			}
			x.wall = append(x.wall, ms(r.wall))
			x.cpu = append(x.cpu, ms(r.cpu))
		}
	}
	t.extras = extras
	b.raw["layers_wall_ms"], b.raw["layers_cpu_ms"] = t.wall, t.cpu
	b.rep.layers = t
}

// extra is a Bulwark-only way to run /bin/true with more hardening than
// plain OCI can express (Landlock, the policy floor), measured in the same
// rounds as the layer table.
type extra struct {
	name, what string
	run        func() result
	wall, cpu  []float64
	fails      int
}

// bulwarkExtras probes each variant once and keeps those that work; a
// variant Bulwark does not have yet becomes a note, not a failure.
func (b *bench) bulwarkExtras() []*extra {
	if b.bulwark == nil {
		return nil
	}
	bw := b.bulwark
	// The image's data root sits in the work dir, which the container's
	// mapped root can traverse (as the rootfs's).
	imageRoot, imageErr := filepath.Join(b.work, "data"), ""
	if err := b.imageDataRoot(bw, imageRoot); err != nil {
		imageRoot, imageErr = "", err.Error()
	}
	cands := []*extra{
		{
			name: "`bulwark run ROOTFS -- /bin/true`",
			what: "user face, full default policy (user namespace, Landlock, seccomp, no capabilities, …)",
			run: func() result {
				r := run(b.work, b.cmd(bw, "run", b.rootfs, "--", "/bin/true")...)
				reapOrphans()
				return r
			},
		},
		{
			name: "`bulwark run IMAGE -- /bin/true`",
			what: "user face from an image of the store: the same files as ROOTFS, on an overlay snapshot over idmapped layers, removed with the container",
			run: func() result {
				if imageRoot == "" {
					return result{code: -1, stderr: imageErr}
				}
				r := run(b.work, append([]string{bw.bin, "--data-root", imageRoot}, b.cmd(bw, "run", benchImage, "--", "/bin/true")[1:]...)...)
				reapOrphans()
				return r
			},
		},
		{
			name: "`bulwark --harden run -b PLAIN ID`",
			what: "OCI face with the hardening floor (no_new_privs, default seccomp when none, Landlock)",
			run: func() result {
				id := b.newID(bw)
				dir, err := b.bundle(id, trueArgs, layers{})
				if err != nil {
					return result{code: -1, stderr: err.Error()}
				}
				defer b.rmBundle(dir)
				r := run(b.work, append([]string{bw.bin, "--harden"}, b.cmd(bw, "run", "-b", dir, id)[1:]...)...)
				if !r.ok() {
					run(b.work, b.cmd(bw, "delete", "-f", id)...)
				}
				reapOrphans()
				return r
			},
		},
	}
	var ok []*extra
	for _, x := range cands {
		if r := x.run(); !r.ok() {
			b.note("%s (%s) does not work with this bulwark build, not measured: %s", x.name, x.what, r.err())
			continue
		}
		ok = append(ok, x)
	}
	return ok
}
