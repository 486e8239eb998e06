package engines

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests in this file kill the real `bulwark create` and `bulwark exec`
// processes that an engine started, at chosen points of their work, and
// then require that the engine's next commands succeed and that nothing of
// the container is left on the host.
//
// A kill "at a point" must not depend on a poller winning a race, so the
// engines run bulwark through a wrapper (crashWrapperMain, this test binary
// re-executed) that, for the one command a test has armed, arranges for the
// real bulwark to block at that point on a FIFO the test holds the other end
// of. The wrapper then execs the real bulwark in its own place, so the
// process the engine waits for is bulwark itself and bulwark does all the
// work. The rendezvous on the FIFO tells the test that bulwark is there; the
// test SIGKILLs it, as an engine's timeout or the OOM killer would.
//
// The points:
//   - create/prestart: a prestart hook that reads the FIFO. The init is in
//     its namespaces and cgroup, its mounts are made, state says creating.
//   - create/createContainer: a createContainer hook, run by the init inside
//     the container's namespaces while bulwark create waits for it.
//   - create/pidfile: the pid file's temporary name is a FIFO with a full
//     buffer. The container is created and its state saved; bulwark is
//     reporting the init's pid.
//   - exec/process: --process is a FIFO; bulwark exec is waiting for the
//     process to run and has started nothing.
//   - exec/pidfile: as for create; the exec'd process is set up in the
//     container and waits for bulwark, which is reporting its pid, to let
//     it run.

const (
	crashCtlEnv = "BWE_CRASH_CTL"
	crashBinEnv = "BWE_CRASH_BULWARK"
)

func init() {
	// The test binary doubles as the runtime wrapper the engines call.
	if ctl := os.Getenv(crashCtlEnv); ctl != "" {
		err := crashWrapperMain(ctl, os.Getenv(crashBinEnv), os.Args[1:])
		fmt.Fprintln(os.Stderr, "bulwark crash wrapper:", err)
		os.Exit(1)
	}
}

// runcVerbs are the subcommands the wrapper recognises after the global
// flags.
var runcVerbs = []string{"create", "start", "exec", "delete", "kill", "state", "ps", "pause", "resume",
	"update", "events", "features", "list", "run", "checkpoint", "restore", "spec"}

// crashWrapperMain is the runtime the engines call: it applies the armed
// plan (ctl/plan.VERB) to that one command and execs bulwark. Without a
// --root (podman passes none) it gives bulwark one under ctl, so the test can
// require that bulwark's state there is empty afterwards.
func crashWrapperMain(ctl, bin string, args []string) error {
	sub, root := -1, ""
scan:
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--root" && i+1 < len(args):
			root = args[i+1]
			i++
		case strings.HasPrefix(a, "--root="):
			root = strings.TrimPrefix(a, "--root=")
		case (a == "--log" || a == "--log-format" || a == "--criu") && i+1 < len(args):
			i++
		case slices.Contains(runcVerbs, a):
			sub = i
			break scan
		}
	}
	if root == "" {
		root = filepath.Join(ctl, "state")
		args = append([]string{"--root", root}, args...)
		if sub >= 0 {
			sub += 2
		}
	}
	if f, err := os.OpenFile(filepath.Join(ctl, "roots"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		fmt.Fprintln(f, root)
		f.Close()
	}
	if sub >= 0 {
		verb := args[sub]
		// Renaming claims the plan: only one command is armed.
		claimed := filepath.Join(ctl, "claimed")
		if os.Rename(filepath.Join(ctl, "plan."+verb), claimed) == nil {
			point, _ := os.ReadFile(claimed)
			if err := armPoint(ctl, verb, strings.TrimSpace(string(point)), args[sub+1:]); err != nil {
				return err
			}
		}
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, crashCtlEnv+"=") && !strings.HasPrefix(e, crashBinEnv+"=") {
			env = append(env, e)
		}
	}
	return unix.Exec(bin, append([]string{bin}, args...), env)
}

// flagValue finds --name VALUE or --name=VALUE among a subcommand's args.
func flagValue(args []string, names ...string) string {
	for i, a := range args {
		for _, n := range names {
			if a == n && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, n+"=") {
				return strings.TrimPrefix(a, n+"=")
			}
		}
	}
	return ""
}

// armPoint prepares the FIFO that will hold bulwark at point and records
// the container id (the last argument) and the FIFO's path for the test.
func armPoint(ctl, verb, point string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s: no container id", verb)
	}
	id := args[len(args)-1]
	if err := os.WriteFile(filepath.Join(ctl, "id"), []byte(id), 0o644); err != nil {
		return err
	}
	gate := filepath.Join(ctl, "gate")
	switch verb + "/" + point {
	case "create/prestart", "create/createContainer":
		bundle := flagValue(args, "--bundle", "-b")
		if bundle == "" {
			bundle = "."
		}
		if err := addBlockingHook(filepath.Join(bundle, "config.json"), point, gate); err != nil {
			return err
		}
	case "create/pidfile", "exec/pidfile":
		// writePidFile writes the pid to .NAME.tmp and renames it: a
		// FIFO there holds bulwark after everything but that report.
		pf := flagValue(args, "--pid-file")
		if pf == "" {
			return fmt.Errorf("%s: no --pid-file", verb)
		}
		tmp := filepath.Join(filepath.Dir(pf), "."+filepath.Base(pf)+".tmp")
		if err := unix.Mkfifo(tmp, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(ctl, "gatepath"), []byte(tmp), 0o644); err != nil {
			return err
		}
		// The FIFO only holds bulwark once the test has filled its
		// buffer: wait for the test's go-ahead (it closes ctl/gate).
		_, err := os.ReadFile(gate)
		return err
	case "exec/process":
		// bulwark exec reads its process from this file first: as a
		// FIFO it holds bulwark before it has started anything.
		p := flagValue(args, "--process", "-p")
		if p == "" {
			return fmt.Errorf("exec: no --process")
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		gate = p
		if err := unix.Mkfifo(gate, 0o600); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown crash point %s/%s", verb, point)
	}
	return os.WriteFile(filepath.Join(ctl, "gatepath"), []byte(gate), 0o644)
}

// addBlockingHook appends a hook of the given kind that blocks reading
// gate (the test's FIFO) to the bundle's config. The config is edited as a
// generic JSON object so nothing the engine wrote is lost.
func addBlockingHook(config, kind, gate string) error {
	b, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	hooks, _ := spec["hooks"].(map[string]any)
	if hooks == nil {
		hooks = map[string]any{}
	}
	list, _ := hooks[kind].([]any)
	hooks[kind] = append(list, map[string]any{
		"path": "/bin/sh",
		"args": []string{"sh", "-c", "exec cat " + gate + " >/dev/null"},
	})
	spec["hooks"] = hooks
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(config, out, 0o644)
}

// crashCtl is the test's side of the wrapper: the wrapper script the
// engines are given and the directory both sides use.
type crashCtl struct {
	dir, wrapper string
}

var (
	crashOnce sync.Once
	crash     *crashCtl
	crashErr  error
)

func crashControl(t *testing.T) *crashCtl {
	t.Helper()
	crashOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			crashErr = err
			return
		}
		c := &crashCtl{dir: filepath.Join(workDir, "crashctl"), wrapper: filepath.Join(workDir, "bwcrash")}
		if crashErr = os.MkdirAll(c.dir, 0o700); crashErr != nil {
			return
		}
		script := fmt.Sprintf("#!/bin/sh\n%s=%s %s=%s exec %s \"$@\"\n",
			crashCtlEnv, shellQuote([]string{c.dir}), crashBinEnv, shellQuote([]string{bulwarkBin}), shellQuote([]string{self}))
		crashErr = os.WriteFile(c.wrapper, []byte(script), 0o755)
		crash = c
	})
	if crashErr != nil {
		t.Fatalf("crash wrapper: %v", crashErr)
	}
	return crash
}

// arm makes the next `bulwark VERB` stop at point.
func (c *crashCtl) arm(t *testing.T, verb, point string) {
	t.Helper()
	for _, f := range []string{"claimed", "id", "gatepath", "gate", "plan.create", "plan.exec"} {
		os.Remove(filepath.Join(c.dir, f))
	}
	if err := unix.Mkfifo(filepath.Join(c.dir, "gate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "plan."+verb), []byte(point), 0o644); err != nil {
		t.Fatal(err)
	}
}

// roots are the --root directories bulwark has been run with.
func (c *crashCtl) roots() []string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "roots"))
	var out []string
	for _, l := range strings.Fields(string(b)) {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// asyncCmd is an engine command the test does not wait for at once: it
// blocks while bulwark is held.
type asyncCmd struct {
	cmd      *exec.Cmd
	done     chan struct{}
	out, err string
	res      result
}

func startAsync(t *testing.T, name string, args ...string) *asyncCmd {
	t.Helper()
	dir := t.TempDir()
	a := &asyncCmd{cmd: exec.Command(name, args...), done: make(chan struct{}),
		out: filepath.Join(dir, "out"), err: filepath.Join(dir, "err")}
	o, _ := os.Create(a.out)
	e, _ := os.Create(a.err)
	a.cmd.Stdout, a.cmd.Stderr, a.cmd.Dir = o, e, dir
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	go func() {
		err := a.cmd.Wait()
		o.Close()
		e.Close()
		ob, _ := os.ReadFile(a.out)
		eb, _ := os.ReadFile(a.err)
		a.res = result{stdout: string(ob), stderr: string(eb)}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			a.res.code = ee.ExitCode()
		} else if err != nil {
			a.res.code = -1
			a.res.stderr += err.Error()
		}
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			a.cmd.Process.Kill()
			<-a.done
		}
	})
	return a
}

func (a *asyncCmd) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-a.done:
		return a.res
	case <-time.After(120 * time.Second):
		t.Fatalf("%v: still running 120s after bulwark was killed", a.cmd.Args)
	}
	return result{}
}

// rendezvous waits until bulwark (or its hook) has opened the armed FIFO
// and returns the test's end, open. While the test holds it, bulwark stays
// at the point. If the engine command ends first, that is the failure.
func (c *crashCtl) rendezvous(t *testing.T, verb, point string, a *asyncCmd) *os.File {
	t.Helper()
	var gate string
	if !waitFor(60*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(c.dir, "gatepath"))
		gate = string(b)
		select {
		case <-a.done:
			return true
		default:
		}
		return err == nil
	}) || gate == "" {
		select {
		case <-a.done:
			t.Fatalf("%v ended before bulwark %s reached %s: %v", a.cmd.Args, verb, point, a.res)
		default:
		}
		t.Fatalf("bulwark %s was not armed at %s within 60s", verb, point)
	}
	if point == "pidfile" {
		return c.holdWriter(t, verb, gate, a)
	}
	// A hook reads the FIFO, and so does bulwark exec its process. The
	// test opens the writing end, which blocks until the reader has opened
	// its own; the reader then waits for data that never comes.
	flag, unblock := os.O_WRONLY, os.O_RDONLY
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.OpenFile(gate, flag, 0)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatalf("opening %s: %v", gate, o.err)
		}
		return o.f
	case <-a.done:
		t.Fatalf("%v ended before bulwark %s reached %s: %v", a.cmd.Args, verb, point, a.res)
	case <-time.After(60 * time.Second):
		t.Errorf("bulwark %s did not reach %s within 60s", verb, point)
	}
	// Release our own blocked open with the other end, non-blocking.
	if f, err := os.OpenFile(gate, unblock|unix.O_NONBLOCK, 0); err == nil {
		f.Close()
	}
	if o := <-ch; o.f != nil {
		o.f.Close()
	}
	t.FailNow()
	return nil
}

// holdWriter holds bulwark in its write of the pid file. Writing to a FIFO
// only blocks once its buffer is full, so the test opens it read-write
// (which never blocks), fills the buffer, lets the waiting wrapper exec
// bulwark, and waits until bulwark has the FIFO open: from then on bulwark
// cannot get past the write.
func (c *crashCtl) holdWriter(t *testing.T, verb, gate string, a *asyncCmd) *os.File {
	t.Helper()
	f, err := os.OpenFile(gate, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("opening %s: %v", gate, err)
	}
	fd := int(f.Fd())
	unix.SetNonblock(fd, true)
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(fd, chunk); err != nil {
			break // EAGAIN: full
		}
	}
	// The wrapper waits for this before it execs bulwark, so bulwark
	// cannot reach the pid file before the buffer is full.
	goAhead, err := os.OpenFile(filepath.Join(c.dir, "gate"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("go-ahead to the wrapper: %v", err)
	}
	goAhead.Close()
	id := c.containerID(t)
	holding := func() bool {
		for _, pid := range bulwarkProcesses(verb, id) {
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			for _, e := range fds {
				if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l == gate {
					return true
				}
			}
		}
		return false
	}
	if !waitFor(60*time.Second, func() bool {
		select {
		case <-a.done:
			return true
		default:
		}
		return holding()
	}) || !holding() {
		f.Close()
		select {
		case <-a.done:
			t.Fatalf("%v ended before bulwark %s opened its pid file: %v", a.cmd.Args, verb, a.res)
		default:
		}
		t.Fatalf("bulwark %s did not open its pid file within 60s", verb)
	}
	return f
}

// bulwarkProcesses finds `bulwark VERB ... ID` processes by command line.
func bulwarkProcesses(verb, id string) []int {
	return processesWhere(func(args []string) bool {
		return len(args) > 1 && args[0] == bulwarkBin && slices.Contains(args, verb) && slices.Contains(args, id)
	})
}

// killBulwark finds the one `bulwark VERB ... ID` process by its command
// line and SIGKILLs it.
func killBulwark(t *testing.T, verb, id string) {
	t.Helper()
	pids := bulwarkProcesses(verb, id)
	if len(pids) != 1 {
		t.Fatalf("want one `bulwark %s ... %s` process, found %v", verb, id, pids)
	}
	if err := unix.Kill(pids[0], unix.SIGKILL); err != nil {
		t.Fatalf("kill bulwark %s: %v", verb, err)
	}
	// Dead once gone or a zombie its parent (the shim, conmon) has yet to reap.
	waitFor(10*time.Second, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[0]))
		s := string(b)
		return err != nil || strings.HasPrefix(s[strings.LastIndexByte(s, ')')+1:], " Z")
	})
}

// processesWhere lists host processes whose argv matches, never this one.
func processesWhere(match func(args []string) bool) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

func describe(pids []int) []string {
	var out []string
	for _, p := range pids {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		out = append(out, fmt.Sprintf("%d %s", p, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return out
}

// bulwarkInitsOf lists `bulwark init` processes in container id's cgroup
// other than its init (pid 1 in the container runs the payload): the
// processes exec is setting up.
func bulwarkInitsOf(id string) []int {
	var out []int
	for _, pid := range processesWhere(func(args []string) bool {
		return len(args) == 2 && args[0] == bulwarkBin && args[1] == "init"
	}) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid)); err == nil && strings.Contains(string(b), id) {
			out = append(out, pid)
		}
	}
	return out
}

// crashEngine is what the tests need of docker, podman and ctr.
type crashEngine struct {
	name string
	// run starts a detached container (blocking while bulwark is held).
	run func(t *testing.T, name, mark string) *asyncCmd
	// exec runs a command in a running container, in the background.
	exec func(t *testing.T, name string, cmd ...string) *asyncCmd
	// remove is the engine's forced removal; it must succeed.
	remove func(t *testing.T, name string) result
	// runOnce runs a new container to completion, removing it.
	runOnce func(t *testing.T, cmd ...string) result
}

// assertNothingLeft requires that no process, mount, cgroup or bulwark
// state of container id (or running a payload marked with marks) is on the
// host. Shims and conmon leave a moment after rm returns, so processes get
// a bounded wait.
func assertNothingLeft(t *testing.T, c *crashCtl, id string, marks ...string) {
	t.Helper()
	stray := func() []int {
		return processesWhere(func(args []string) bool {
			for _, a := range args {
				if strings.Contains(a, id) {
					return true
				}
			}
			return len(args) == 2 && args[0] == "sleep" && slices.Contains(marks, args[1])
		})
	}
	if !waitFor(30*time.Second, func() bool { return len(stray()) == 0 }) {
		t.Errorf("processes of %s left: %v", id, describe(stray()))
	}
	if m := hostMountsNaming(id); len(m) > 0 {
		t.Errorf("mounts of %s left: %v", id, m)
	}
	if l := leftoverCgroups(id); len(l) > 0 {
		t.Errorf("cgroups of %s left: %v", id, l)
	}
	for _, root := range c.roots() {
		if m := mountsUnder(root); len(m) > 0 {
			t.Errorf("mounts under bulwark's root %s left: %v", root, m)
		}
		r := runCmd(t, nil, bulwarkBin, "--root", root, "list", "-q")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("bulwark --root %s list: want no container: %v", root, r)
		}
		if _, err := os.Lstat(filepath.Join(root, id)); err == nil {
			t.Errorf("bulwark state directory %s left", filepath.Join(root, id))
		}
	}
}

var crashMarkSeq = 0

// payloadMark is a number no other process on the host sleeps for, so the
// payload can be told from everyone else's.
func payloadMark() string {
	crashMarkSeq++
	return strconv.Itoa(700000000 + os.Getpid()%1000000*100 + crashMarkSeq)
}

func (c *crashCtl) containerID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "id"))
	if err != nil {
		t.Fatalf("the armed command recorded no container id: %v", err)
	}
	return string(b)
}

// TestKilledCreateAtEachPointLeavesNothingAndEngineRecovers kills bulwark
// create at each point through each engine.
func TestKilledCreateAtEachPointLeavesNothingAndEngineRecovers(t *testing.T) {
	forEachCrashEngine(t, func(t *testing.T, c *crashCtl, e *crashEngine) {
		for _, point := range []string{"prestart", "createContainer", "pidfile"} {
			t.Run(point, func(t *testing.T) {
				name := fmt.Sprintf("bwk-%d-%d", os.Getpid(), nameSeq.Add(1))
				mark := payloadMark()
				c.arm(t, "create", point)
				a := e.run(t, name, mark)
				// Whatever fails below, the container goes.
				t.Cleanup(func() { e.remove(t, name) })
				gate := c.rendezvous(t, "create", point, a)
				id := c.containerID(t)
				killBulwark(t, "create", id)
				gate.Close()
				r := a.wait(t)
				t.Logf("%s run with bulwark create killed at %s: %v", e.name, point, r)
				if rr := e.remove(t, name); rr.code != 0 {
					t.Fatalf("%s: removing the container after bulwark create was killed at %s: %v", e.name, point, rr)
				}
				if rr := e.runOnce(t, "sh", "-c", "echo recovered"); rr.code != 0 || !strings.Contains(rr.stdout, "recovered") {
					t.Fatalf("%s: a new container after bulwark create was killed at %s: %v", e.name, point, rr)
				}
				assertNothingLeft(t, c, id, mark)
			})
		}
	})
}

// TestKilledExecLeavesContainerUsableAndRemovable kills bulwark exec
// before it started anything and once the exec'd process is set up and its
// pid being reported; the process must not run on without its runtime, the
// container must still take an exec, and rm -f must leave nothing.
func TestKilledExecLeavesContainerUsableAndRemovable(t *testing.T) {
	forEachCrashEngine(t, func(t *testing.T, c *crashCtl, e *crashEngine) {
		for _, point := range []string{"process", "pidfile"} {
			t.Run(point, func(t *testing.T) {
				name := fmt.Sprintf("bwk-%d-%d", os.Getpid(), nameSeq.Add(1))
				mark, execMark := payloadMark(), payloadMark()
				if r := e.run(t, name, mark).wait(t); r.code != 0 {
					t.Fatalf("%s: starting the container: %v", e.name, r)
				}
				t.Cleanup(func() { e.remove(t, name) })
				c.arm(t, "exec", point)
				a := e.exec(t, name, "sleep", execMark)
				gate := c.rendezvous(t, "exec", point, a)
				id := c.containerID(t)
				// At either point the command has not run yet: at the
				// pid file the process is set up in the container and
				// waits for bulwark's word to execve.
				execd := func() []int {
					return processesWhere(func(args []string) bool {
						return len(args) == 2 && args[0] == "sleep" && args[1] == execMark
					})
				}
				if p := execd(); len(p) != 0 {
					t.Fatalf("bulwark exec held at %s: the command already runs: %v", point, describe(p))
				}
				killBulwark(t, "exec", id)
				gate.Close()
				// Without its runtime's word the process must never run:
				// nobody would know its pid, and under podman it would
				// hold conmon, and the container's lock, until it ended.
				if point == "pidfile" {
					waitFor(10*time.Second, func() bool { return len(bulwarkInitsOf(id)) == 0 })
					if p := append(execd(), bulwarkInitsOf(id)...); len(p) != 0 {
						t.Fatalf("bulwark exec killed before it let the process run, yet it lives: %v", describe(p))
					}
				}
				if r := e.exec(t, name, "sh", "-c", "echo second exec").wait(t); r.code != 0 || !strings.Contains(r.stdout, "second exec") {
					t.Fatalf("%s: exec after bulwark exec was killed at %s: %v", e.name, point, r)
				}
				if rr := e.remove(t, name); rr.code != 0 {
					t.Fatalf("%s: rm -f after bulwark exec was killed at %s: %v", e.name, point, rr)
				}
				// Only now: conmon waits for the stdio of an exec'd
				// process that outlived its runtime (as with runc), so
				// podman exec returns when rm -f has killed it.
				r := a.wait(t)
				if r.code == 0 {
					t.Errorf("%s exec reported success though bulwark exec was killed at %s: %v", e.name, point, r)
				}
				t.Logf("%s exec with bulwark exec killed at %s: %v", e.name, point, r)
				assertNothingLeft(t, c, id, mark, execMark)
			})
		}
	})
}

// forEachCrashEngine runs f for docker, podman and ctr, each driving
// bulwark through the crash wrapper.
func forEachCrashEngine(t *testing.T, f func(t *testing.T, c *crashCtl, e *crashEngine)) {
	t.Run("docker", func(t *testing.T) {
		d := startCrashDocker(t)
		f(t, crashControl(t), cliCrashEngine(d, []string{"rm", "-f"}))
	})
	t.Run("podman", func(t *testing.T) {
		p := startPodman(t)
		c := crashControl(t)
		e := *p
		e.global = slices.Clone(p.global)
		i := slices.Index(e.global, "--runtime")
		e.global[i+1] = c.wrapper
		f(t, c, cliCrashEngine(&e, []string{"rm", "-f", "-t", "0"}))
	})
	t.Run("ctr", func(t *testing.T) {
		ce := startContainerd(t)
		c := crashControl(t)
		f(t, c, ctrCrashEngine(ce, c))
	})
}

func cliCrashEngine(e *cliEngine, rm []string) *crashEngine {
	g := func(args ...string) []string { return append(slices.Clone(e.global), args...) }
	return &crashEngine{
		name: e.name,
		run: func(t *testing.T, name, mark string) *asyncCmd {
			a := append(g("run", "-d", "--name", name), e.runFlags...)
			return startAsync(t, e.bin, append(a, e.image, "sleep", mark)...)
		},
		exec: func(t *testing.T, name string, cmd ...string) *asyncCmd {
			return startAsync(t, e.bin, append(g("exec", name), cmd...)...)
		},
		remove: func(t *testing.T, name string) result {
			r := runCmd(t, nil, e.bin, g(append(rm, name)...)...)
			if r.code != 0 && (strings.Contains(r.stderr, "No such container") || strings.Contains(r.stderr, "no such container")) {
				r.code = 0
			}
			return r
		},
		runOnce: func(t *testing.T, cmd ...string) result {
			a := append(g("run", "--rm"), e.runFlags...)
			return runCmd(t, nil, e.bin, append(append(a, e.image), cmd...)...)
		},
	}
}

func ctrCrashEngine(ce *ctrEngine, c *crashCtl) *crashEngine {
	flags := []string{"--runtime", "io.containerd.runc.v2", "--runc-binary", c.wrapper, "--runc-root", filepath.Join(c.dir, "ctr-root")}
	return &crashEngine{
		name: "ctr",
		run: func(t *testing.T, name, mark string) *asyncCmd {
			a := append(ce.args("run", "-d"), flags...)
			return startAsync(t, "ctr", append(a, ce.image, name, "sleep", mark)...)
		},
		exec: func(t *testing.T, name string, cmd ...string) *asyncCmd {
			a := ce.args("task", "exec", "--exec-id", fmt.Sprintf("x%d", nameSeq.Add(1)), name)
			return startAsync(t, "ctr", append(a, cmd...)...)
		},
		remove: func(t *testing.T, name string) result {
			// ctr has no rm -f: kill the task, delete it, delete the
			// container. A task that never got created is not an error.
			ce.do(t, "task", "kill", "-s", "SIGKILL", name)
			r := ce.do(t, "task", "delete", "-f", name)
			if r.code != 0 && !strings.Contains(r.stderr, "not found") {
				return r
			}
			r = ce.do(t, "container", "delete", name)
			if r.code != 0 && strings.Contains(r.stderr, "not found") {
				r.code = 0
			}
			return r
		},
		runOnce: func(t *testing.T, cmd ...string) result {
			a := append(ce.args("run", "--rm"), flags...)
			return runCmd(t, nil, "ctr", append(append(a, ce.image, ce.id(t)), cmd...)...)
		},
	}
}

var (
	crashDockerOnce sync.Once
	crashDocker     *cliEngine
	crashDockerErr  string
)

// startCrashDocker starts a dockerd of its own with the crash wrapper as
// its "bwcrash" runtime: dockerd takes runtimes only when it starts, and
// the shared one should not see the wrapper.
func startCrashDocker(t *testing.T) *cliEngine {
	t.Helper()
	requireEngine(t, "dockerd", dockerBin, "containerd", "containerd-shim-runc-v2")
	c := crashControl(t)
	crashDockerOnce.Do(func() {
		var err error
		if crashDocker, err = newDockerEngine(t, "dcrash", "bwcrash", c.wrapper); err != nil {
			crashDockerErr = err.Error()
		}
	})
	if crashDocker == nil {
		t.Fatalf("dockerd with the crash wrapper did not start: %s", crashDockerErr)
	}
	return crashDocker
}
