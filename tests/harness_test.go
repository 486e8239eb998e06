// Package tests holds Bulwark's integration tests: every test starts real
// containers through the bulwark binary, as root, on the real kernel.
package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/daemontest"
	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

var bulwarkBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("SKIP: integration tests start real containers and need root")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "bulwark-it-bin-")
	if err != nil {
		panic(err)
	}
	bulwarkBin = filepath.Join(dir, "bulwark")
	if env := os.Getenv("BULWARK"); env != "" {
		bulwarkBin = env
	} else {
		if err := testrootfs.BuildBulwark(bulwarkBin); err != nil {
			fmt.Println("building bulwark:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's runtime: its own --root, and the ids it created so they
// are force-deleted whatever happens.
type env struct {
	t    *testing.T
	root string
	ids  []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		for _, id := range e.ids {
			exec.Command(bulwarkBin, "--root", e.root, "delete", "--force", id).Run()
		}
		for _, id := range e.ids {
			assertNoLeftovers(t, id)
		}
	})
	return e
}

// id returns a fresh container id, unique across tests and runs.
func (e *env) id() string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d-%d", e.t.Name(), time.Now().UnixNano(), len(e.ids))))
	id := "bwt-" + hex.EncodeToString(h[:5])
	e.ids = append(e.ids, id)
	return id
}

type result struct {
	stdout, stderr string
	code           int
	// timedOut: bwOpts.timeout ran out and the run was killed; stdout and
	// stderr hold what it printed until then.
	timedOut bool
	// took and cpu: the command's wall time, and the CPU time (user+sys)
	// of it and every process it waited for (a container's, through its
	// init): on a loaded host the steadier of the two.
	took, cpu time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// bw runs the bulwark binary with this env's --root.
func (e *env) bw(args ...string) result {
	e.t.Helper()
	return e.bwIn(nil, args...)
}

func (e *env) bwIn(stdin []byte, args ...string) result {
	e.t.Helper()
	return e.bwWith(bwOpts{stdin: stdin}, args...)
}

// bwOpts runs a bulwark binary other than the shared one, with stdin, or
// with files the runtime inherits from its caller (fds 3, 4, ...: the way
// an engine passes fds with --preserve-fds).
type bwOpts struct {
	bin    string
	stdin  []byte
	stdout *os.File // default: a temp file
	extra  []*os.File
	// timeout replaces the default 60 s limit; a run that outlasts it is
	// killed and returned with timedOut set instead of failing the test.
	timeout time.Duration
}

// bwWith runs bulwark with this env's --root. Its output goes to files, not
// pipes: a detached container inherits our stdio and would keep a pipe
// open, making Wait hang until the container exits.
func (e *env) bwWith(o bwOpts, args ...string) result {
	e.t.Helper()
	bin := o.bin
	if bin == "" {
		bin = bulwarkBin
	}
	cmd := exec.Command(bin, append([]string{"--root", e.root}, args...)...)
	out := o.stdout
	if out == nil {
		f, err := os.CreateTemp(e.t.TempDir(), "stdout")
		if err != nil {
			e.t.Fatal(err)
		}
		defer f.Close()
		out = f
	}
	errf, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer errf.Close()
	cmd.Stdout, cmd.Stderr, cmd.ExtraFiles = out, errf, o.extra
	if o.stdin != nil {
		cmd.Stdin = bytes.NewReader(o.stdin)
	}
	limit := 60 * time.Second
	if o.timeout > 0 {
		limit = o.timeout
	}
	began := time.Now()
	err = runWithTimeout(cmd, limit)
	ob, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errf.Name())
	r := result{stdout: string(ob), stderr: string(eb), took: time.Since(began)}
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case errors.Is(err, errTimedOut) && o.timeout > 0:
		r.code, r.timedOut = -1, true
	default:
		e.t.Fatalf("bulwark %v: %v", args, err)
	}
	return r
}

// errTimedOut is wrapped by runWithTimeout's error when it killed the command.
var errTimedOut = errors.New("timed out")

func runWithTimeout(cmd *exec.Cmd, d time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w after %s", errTimedOut, d)
	}
}

// mustOK fails the test unless bulwark exited 0.
func (e *env) mustOK(args ...string) string {
	e.t.Helper()
	r := e.bw(args...)
	if r.code != 0 {
		e.t.Fatalf("bulwark %v: %v", args, r)
	}
	return r.stdout
}

// runIn runs args in a new container from a bundle changed by mutate and
// returns the result of `bulwark run`.
func (e *env) runIn(mutate func(*specs.Spec), args ...string) result {
	e.t.Helper()
	bundle := testrootfs.Bundle(e.t, func(s *specs.Spec) {
		s.Process.Args = args
		if mutate != nil {
			mutate(s)
		}
	})
	return e.bw("run", "-b", bundle, e.id())
}

// state returns `bulwark state ID` parsed.
func (e *env) state(id string) map[string]any {
	e.t.Helper()
	out := e.mustOK("state", id)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		e.t.Fatalf("state %s: %v: %s", id, err, out)
	}
	return m
}

// assertNoLeftovers checks the host for anything named after the container:
// cgroup directories and mounts.
func assertNoLeftovers(t *testing.T, id string) {
	t.Helper()
	found := daemontest.LeftoverCgroups(id)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, id) {
				found = append(found, "mount: "+l)
			}
		}
	}
	if len(found) > 0 {
		t.Errorf("container %s left behind: %v", id, found)
	}
}

// probe runs the probe payload in a container and decodes its JSON.
func (e *env) probe(mutate func(*specs.Spec)) map[string]any {
	e.t.Helper()
	r := e.runIn(mutate, "/usr/local/bin/probe", "-json")
	if r.code != 0 {
		e.t.Fatalf("probe: %v", r)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		e.t.Fatalf("probe output: %v\n%s", err, r.stdout)
	}
	return m
}

func userNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
}
