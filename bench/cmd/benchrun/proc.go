package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
)

// result of one runtime command, taken from wait4 on its pid.
type result struct {
	wall   time.Duration
	cpu    time.Duration // user+sys of the process and every descendant it reaped
	maxRSS int64         // KiB: kernel high-water of the largest single process among those
	code   int           // exit status, or 128+signal
	stderr string
	stdout string
}

func (r result) ok() bool { return r.code == 0 }

func (r result) err() string {
	msg := strings.TrimSpace(r.stderr)
	if msg == "" {
		msg = strings.TrimSpace(r.stdout)
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return fmt.Sprintf("exit %d: %s", r.code, msg)
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proc is a started command whose output goes to files, not pipes: a pipe
// would need a reader goroutine racing the runtime for CPU on 2 cores.
type proc struct {
	pid      int
	start    time.Time
	out, err *os.File
}

func spawn(dir string, argv []string) (*proc, error) {
	out, err := os.CreateTemp(dir, "out-")
	if err != nil {
		return nil, err
	}
	errf, err := os.CreateTemp(dir, "err-")
	if err != nil {
		out.Close()
		return nil, err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	p := &proc{out: out, err: errf}
	p.start = time.Now()
	p.pid, err = syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), out.Fd(), errf.Fd()},
	})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	return p, nil
}

func (p *proc) close() {
	os.Remove(p.out.Name())
	os.Remove(p.err.Name())
	p.out.Close()
	p.err.Close()
}

// finish turns the wait4 status into a result and collects the output.
func (p *proc) finish(end time.Time, ws syscall.WaitStatus, ru *syscall.Rusage) result {
	r := result{wall: end.Sub(p.start), cpu: rusageCPU(ru), maxRSS: ru.Maxrss}
	switch {
	case ws.Exited():
		r.code = ws.ExitStatus()
	case ws.Signaled():
		r.code = 128 + int(ws.Signal())
	}
	o, _ := os.ReadFile(p.out.Name())
	e, _ := os.ReadFile(p.err.Name())
	r.stdout, r.stderr = string(o), string(e)
	p.close()
	return r
}

func (p *proc) wait() result {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(p.pid, &ws, 0, &ru)
		if err == syscall.EINTR {
			continue
		}
		break
	}
	return p.finish(time.Now(), ws, &ru)
}

// run starts argv and waits for it.
func run(dir string, argv ...string) result {
	p, err := spawn(dir, argv)
	if err != nil {
		return result{code: -1, stderr: err.Error()}
	}
	return p.wait()
}

// reapOrphans collects zombies handed to us as child subreaper (container
// inits whose runtime already exited) so none outlive a measurement.
func reapOrphans() (cpu time.Duration) {
	for {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, &ru)
		if pid <= 0 || err != nil {
			return cpu
		}
		cpu += rusageCPU(&ru)
	}
}

// waitGone waits for a pid that may or may not be our child (the detached
// container init): reap it if it is ours, else poll until it disappears.
func waitGone(pid int, timeout time.Duration) (cpu time.Duration, ok bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		var ru syscall.Rusage
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, &ru)
		if got == pid {
			return rusageCPU(&ru), true
		}
		if err == syscall.ECHILD {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				return 0, true
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return 0, false
}

// descendants lists every process below root. Without
// CONFIG_PROC_CHILDREN the only way is a full /proc scan of ppids.
func descendants(root int) []int { return newTree().descendants(root) }

// tree caches parent pids between scans, so a sampler reads /proc/N/stat
// only for processes it has not seen: a full scan costs ~1 ms on this host,
// too coarse against a 10-30 ms container start. A cached entry can only go
// stale if a pid is reused during one sampled run, which needs the pid space
// to wrap within milliseconds.
type tree struct{ parent map[int]int }

func newTree() *tree { return &tree{parent: map[int]int{}} }

func (t *tree) descendants(root int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	live := make(map[int]bool, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		live[pid] = true
		if _, ok := t.parent[pid]; ok {
			continue
		}
		if pp, ok := readPPid(pid); ok {
			t.parent[pid] = pp
		}
	}
	for pid := range t.parent {
		if !live[pid] {
			delete(t.parent, pid)
		}
	}
	var out []int
	for pid := range t.parent {
		for p, n := t.parent[pid], 0; p != 0 && n < 64; p, n = t.parent[p], n+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

func readPPid(pid int) (int, bool) {
	s, err := procstat.Read(pid)
	if err != nil {
		return 0, false
	}
	pp, err := strconv.Atoi(s.Field(4))
	return pp, err == nil
}

// memOf reads Rss and Pss (KiB) from smaps_rollup. Pss splits shared pages
// (the runtime binary mapped by parent and init, libc) between the sharers,
// so a sum of Pss over a tree does not count them twice; a sum of Rss does.
func memOf(pid int) (rss, pss int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		}
	}
	return rss, pss
}

// treeSampler polls the memory of all our descendants until stopped and
// keeps the largest sums seen. Sampling can miss a short spike, so the
// peaks are lower bounds; the wait4 high-water mark complements them.
type treeSampler struct {
	stop     chan struct{}
	done     sync.WaitGroup
	peakRSS  int64
	peakPSS  int64
	peakN    int
	interval time.Duration
	samples  int
	span     time.Duration
}

func startSampler(interval time.Duration) *treeSampler {
	s := &treeSampler{stop: make(chan struct{}), interval: interval}
	self := os.Getpid()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t0 := time.Now()
		defer func() { s.span = time.Since(t0) }()
		tr := newTree()
		for {
			s.samples++
			var rss, pss int64
			pids := tr.descendants(self)
			for _, p := range pids {
				r, q := memOf(p)
				rss += r
				pss += q
			}
			if pss > s.peakPSS {
				s.peakPSS, s.peakRSS, s.peakN = pss, rss, len(pids)
			}
			select {
			case <-s.stop:
				return
			case <-time.After(s.interval):
			}
		}
	}()
	return s
}

func (s *treeSampler) finish() {
	close(s.stop)
	s.done.Wait()
}

func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
