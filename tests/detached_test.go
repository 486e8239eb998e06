package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulwark-sec/bulwark/pkg/userface"
)

type lsRow struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Status  string   `json:"status"`
	Exit    *int     `json:"exitCode"`
	Ports   []string `json:"exposedPorts"`
}

func (e *env) ls(dr string) map[string]lsRow {
	e.t.Helper()
	r := e.bw("--data-root", dr, "ls", "--json")
	if r.code != 0 {
		e.t.Fatalf("ls --json: %s", r)
	}
	var rows []lsRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	m := map[string]lsRow{}
	for _, row := range rows {
		m[row.Name] = row
	}
	return m
}

// waitLogs polls bulwark logs until its stdout holds want.
func (e *env) waitLogs(id, want string) result {
	e.t.Helper()
	return waitLogs(e.t, e.bw, id, want)
}

// waitLogs polls `logs id` through bw (root's or the rootless account's)
// until its stdout holds want, for at most 10 s.
func waitLogs(t *testing.T, bw func(...string) result, id, want string) result {
	t.Helper()
	var r result
	for i := 0; i < 100; i++ {
		if r = bw("logs", id); r.code == 0 && strings.Contains(r.stdout, want) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("logs %s never showed %q: %s", id, want, r)
	return r
}

// TestUserRunDetachedOutlivesItsCommandUntilStopAndRm runs an image
// detached: run -d prints the name and returns while the container runs,
// ls shows it with its image, command and exposed ports, logs has its
// output, stop sends the image's stop signal and records the exit status,
// and rm leaves nothing behind.
func TestUserRunDetachedOutlivesItsCommandUntilStopAndRm(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:6", func(c *v1.Config) {
		c.Entrypoint = []string{"sh", "-c"}
		c.Cmd = []string{"echo started; echo to-stderr >&2; trap 'echo got-usr1; exit 3' USR1; while :; do sleep 0.1; done"}
		c.StopSignal = "SIGUSR1"
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	})
	id := e.id()
	start := time.Now()
	r := e.bw("--data-root", dr, "run", "-d", "--name", id, "example.com/busy:6")
	if r.code != 0 || r.stdout != id+"\n" {
		t.Fatalf("run -d: %s", r)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("run -d took %v: it waited for the container", d)
	}
	row, ok := e.ls(dr)[id]
	if !ok || row.Status != "running" || row.Image != "example.com/busy:6" || len(row.Command) != 3 || row.Command[0] != "sh" ||
		len(row.Ports) != 1 || row.Ports[0] != "8080/tcp" {
		t.Fatalf("ls after run -d: %+v (found %v)", row, ok)
	}
	if out := e.bw("ls"); !strings.Contains(out.stdout, id) || !strings.Contains(out.stdout, "running") {
		t.Errorf("ls table: %s", out)
	}
	if out := e.bw("ps"); !strings.Contains(out.stdout, id) {
		t.Errorf("ps without a container: %s", out)
	}
	if r := e.waitLogs(id, "started\n"); r.stdout != "started\n" || r.stderr != "to-stderr\n" {
		t.Errorf("logs: stdout %q, stderr %q; want each stream on its own", r.stdout, r.stderr)
	}
	if r := e.bw("rm", id); r.code == 0 {
		t.Fatalf("rm of a running container without -f succeeded: %s", r)
	}
	if r := e.bw("stop", "-t", "10", id); r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	row = e.ls(dr)[id]
	for i := 0; i < 50 && row.Exit == nil; i++ { // the monitor writes it once it has reaped the init
		time.Sleep(100 * time.Millisecond)
		row = e.ls(dr)[id]
	}
	if row.Status != "stopped" || row.Exit == nil || *row.Exit != 3 {
		t.Fatalf("ls after stop: %+v", row)
	}
	if out := e.bw("logs", "-f", id); out.code != 0 || out.stdout != "started\ngot-usr1\n" || out.stderr != "to-stderr\n" {
		t.Fatalf("logs -f of a stopped container: %s", out)
	}
	if r := e.bw("rm", id); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	e.assertUserRunGone(id)
	if ms := mountsUnder(t, dr); len(ms) != 0 {
		t.Errorf("mounts left under the data root: %q", ms)
	}
}

// A detached --rm container is removed by its monitor when it exits; a
// payload that ignores the stop signal is killed after stop -t; rm -f
// removes a running one; and logs -f follows to the end.
func TestUserRunDetachedRmStopTimeoutAndForce(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	id := e.id()
	if r := e.bw("run", "-d", "--rm", "--name", id, rootfs, "--", "sh", "-c", "sleep 0.5; echo bye"); r.code != 0 {
		t.Fatalf("run -d --rm: %s", r)
	}
	if out := e.bw("logs", "-f", id); !strings.Contains(out.stdout, "bye") && !strings.Contains(out.stderr, "does not exist") {
		t.Errorf("logs -f of a --rm container: %s", out)
	}
	for i := 0; i < 100; i++ {
		if _, ok := e.ls("")[id]; !ok {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.assertUserRunGone(id)

	// sleep as pid 1 has no handler: SIGTERM does nothing to it.
	id = e.id()
	if r := e.bw("run", "-d", "--name", id, rootfs, "--", "sleep", "1000"); r.code != 0 {
		t.Fatalf("run -d sleep: %s", r)
	}
	start := time.Now()
	if r := e.bw("stop", "-t", "1", id); r.code != 0 {
		t.Fatalf("stop -t 1: %s", r)
	}
	if d := time.Since(start); d < time.Second || d > 15*time.Second {
		t.Errorf("stop -t 1 of a container ignoring SIGTERM took %v", d)
	}
	if r := e.bw("rm", id); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	e.assertUserRunGone(id)

	id = e.id()
	if r := e.bw("run", "-d", "--name", id, rootfs, "--", "sleep", "1000"); r.code != 0 {
		t.Fatalf("run -d sleep: %s", r)
	}
	if r := e.bw("rm", "-f", id); r.code != 0 {
		t.Fatalf("rm -f of a running container: %s", r)
	}
	e.assertUserRunGone(id)
	if r := e.bw("logs", id); r.code == 0 {
		t.Errorf("logs of a removed container: %s", r)
	}
}

// A detached run that cannot start says why from the command the person
// typed, and leaves nothing.
func TestUserRunDetachedFailureIsReported(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	r := e.bw("--data-root", t.TempDir(), "run", "-d", "--name", id, "nosuch:1")
	if r.code == 0 || !strings.Contains(r.stderr, "nosuch:1") {
		t.Fatalf("run -d of an unknown image: %s", r)
	}
	e.assertUserRunGone(id)
	r = e.bw("run", "-d", "--name", id, userRootfs(t), "--", "/no/such/program")
	if r.code == 0 || !strings.Contains(r.stderr, "/no/such/program") {
		t.Fatalf("run -d of a missing program: %s", r)
	}
	e.assertUserRunGone(id)
}

// Two runs of one --name at once: one gets the name, the other is refused
// and removes nothing of the first's (its files were once derived from
// the name alone, and each run's cleanup removed the other's).
func TestUserRunSameNameConcurrentlyOneWins(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	for round := 0; round < 3; round++ {
		id := e.id()
		var wg sync.WaitGroup
		res := make([]result, 2)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := exec.Command(bulwarkBin, "--root", e.root, "run", "--name", id, rootfs, "--",
					"sh", "-c", "sleep 1; cat /etc/hostname /etc/resolv.conf >/dev/null && echo intact").CombinedOutput()
				res[i] = result{stdout: string(out)}
				if err != nil {
					res[i].code = 1
				}
			}()
		}
		wg.Wait()
		won := 0
		for _, r := range res {
			switch {
			case r.code == 0 && strings.Contains(r.stdout, "intact"):
				won++
			case r.code != 0 && strings.Contains(r.stdout, "already exists"):
			default:
				t.Errorf("round %d: a run neither won nor was refused for the name: %s", round, r)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d runs got the name, want 1: %v", round, won, res)
		}
		e.assertUserRunGone(id)
	}
}

// A detached container's stdout and stderr come back from bulwark logs on
// stdout and stderr, as each was written; logs -f follows both to the
// end; after a stream filled the log past its cap, logs prints the newest
// part of both streams and the files on disk stay capped.
func TestUserRunDetachedLogsKeepStdoutAndStderrApart(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	// 20 MiB on stderr with no newline, then a line on each stream.
	script := `echo out-first; echo err-first >&2; sleep 1; head -c 20971520 /dev/zero | tr '\0' e >&2; ` +
		`echo >&2; printf 'no-newline' ; echo; echo out-last; echo err-last >&2`
	if r := e.bw("run", "-d", "--name", id, userRootfs(t), "--", "sh", "-c", script); r.code != 0 {
		t.Fatalf("run -d: %s", r)
	}
	var r result
	for i := 0; i < 100 && !strings.HasPrefix(r.stderr, "err-first\n"); i++ {
		r = e.bw("logs", id)
		time.Sleep(20 * time.Millisecond)
	}
	if r.code != 0 || r.stdout != "out-first\n" || !strings.HasPrefix(r.stderr, "err-first\n") {
		t.Errorf("logs while running: exit %d, stdout %q, stderr %.40q", r.code, r.stdout, r.stderr)
	}
	tail := strings.Repeat("e", 1000) + "\nerr-last\n"
	f := e.bw("logs", "-f", id)
	if f.code != 0 || f.stdout != "out-first\nno-newline\nout-last\n" ||
		!strings.HasPrefix(f.stderr, "err-first\n") || !strings.HasSuffix(f.stderr, tail) || strings.Contains(f.stderr, "out") {
		t.Fatalf("logs -f: exit %d, stdout %q, stderr %d bytes: %.20q...%q", f.code, f.stdout, len(f.stderr), f.stderr, f.stderr[max(0, len(f.stderr)-20):])
	}
	// The cap is the log's, both streams together: the flood on stderr
	// rotated out out-first and err-first.
	const capBytes = 8 << 20
	r = e.bw("logs", id)
	if r.code != 0 || r.stdout != "no-newline\nout-last\n" || !strings.HasSuffix(r.stderr, tail) || strings.Contains(r.stderr, "first") ||
		len(r.stderr) < capBytes || len(r.stderr) > 2*capBytes {
		t.Errorf("logs after the flood: exit %d, stdout %q, stderr %d bytes; want the newest 8-16 MiB of it", r.code, r.stdout, len(r.stderr))
	}
	bundle := userface.PathsOf(e.root, id).Bundle
	for _, n := range []string{"container.log", "container.log.1"} {
		if fi, err := os.Stat(filepath.Join(bundle, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		} else if fi.Size() > capBytes {
			t.Errorf("%s: %d bytes, over the cap of %d", n, fi.Size(), capBytes)
		}
	}
	if r := e.bw("rm", id); r.code != 0 {
		t.Fatalf("rm: %s", r)
	}
	e.assertUserRunGone(id)
}
