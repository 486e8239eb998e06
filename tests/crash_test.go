package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// startBW starts bulwark without waiting for it; stdio go to files because
// the container's init inherits them and would hold a pipe open.
func (e *env) startBW(args ...string) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(bulwarkBin, append([]string{"--root", e.root}, args...)...)
	out, err := os.Create(filepath.Join(e.t.TempDir(), "out"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd
}

// waitFile waits for a hook to announce itself by creating path. The bound
// only keeps a broken runtime from hanging the test; nothing is timed.
func waitFile(t *testing.T, path string, cmd *exec.Cmd) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("hook never ran (no %s)", path)
}

// blockingHook writes a hook that announces itself and then blocks; exec
// keeps it a single process, so the runtime's death is the hook's death.
func blockingHook(t *testing.T, dir string) (hook specs.Hook, marker string) {
	t.Helper()
	marker = filepath.Join(dir, "hook-ran")
	path := filepath.Join(dir, "hook.sh")
	// The marker holds the hook's pid, which after exec is the sleep's.
	script := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\necho $$ > %s.tmp\nmv %s.tmp %s\nexec sleep 1000\n", marker, marker, marker)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return specs.Hook{Path: path, Args: []string{path, "blocking-hook"}}, marker
}

// assertReusable proves the id is free again: a full create/start/delete.
func assertReusable(t *testing.T, e *env, id string) {
	t.Helper()
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	before := snapHost(t)
	if r := e.bw("create", "-b", bundle, id); r.code != 0 {
		t.Fatalf("id %s not reusable after the crash: %v", id, r)
	}
	if s := e.state(id)["status"]; s != "created" {
		t.Fatalf("reused id: status %v", s)
	}
	e.mustOK("delete", "--force", id)
	assertClean(t, e.root, id, bundle, before)
}

func TestKilledCreateIsCleanedByForceDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(h *specs.Hooks, hook specs.Hook)
	}{
		{"during createRuntime hook", func(h *specs.Hooks, hook specs.Hook) { h.CreateRuntime = []specs.Hook{hook} }},
		//lint:ignore SA1019 prestart is deprecated but engines still use it
		{"during prestart hook", func(h *specs.Hooks, hook specs.Hook) { h.Prestart = []specs.Hook{hook} }},
		{"during createContainer hook", func(h *specs.Hooks, hook specs.Hook) { h.CreateContainer = []specs.Hook{hook} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			hookDir := t.TempDir()
			// The createContainer hook runs as the container's root, which
			// must be able to reach the script.
			os.Chmod(hookDir, 0o755)
			hook, marker := blockingHook(t, hookDir)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sleep", "100"}
				s.Hooks = &specs.Hooks{}
				tc.set(s.Hooks, hook)
			})
			id := e.id()
			before := snapHost(t)
			cmd := e.startBW("create", "-b", bundle, id)
			waitFile(t, marker, cmd)
			if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			if r := e.bw("delete", "--force", id); r.code != 0 {
				t.Fatalf("delete --force after a killed create: %v", r)
			}
			assertClean(t, e.root, id, bundle, before)
			if b, err := os.ReadFile(marker); err != nil {
				t.Errorf("hook pid: %v", err)
			} else if cl, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/cmdline"); err == nil && len(cl) > 0 {
				// A live process has a command line; a reaped one has no
				// /proc entry, a zombie an empty one.
				t.Errorf("hook %s outlived the runtime and the delete: %q", b, cl)
			}
			assertReusable(t, e, id)
		})
	}
}

// There is no hook to stop at between the init's "ready" and create's exit,
// so kill create at growing delays: across the runs, the kill lands in every
// phase (state dir only, cgroup made, init starting, rootfs half-built,
// ready). Whatever phase it hit, delete --force must leave nothing.
func TestCreateKilledAtAnyPointIsCleanedByForceDelete(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	phases := map[string]int{}
	for i, delay := range killDelays(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 50, 70, 100, 150, 250) {
		before := snapHost(t)
		cmd := e.startBW("create", "-b", bundle, id)
		time.Sleep(delay)
		cmd.Process.Signal(unix.SIGKILL)
		cmd.Wait()
		switch r := e.bw("state", id); {
		case r.code != 0:
			phases["none"]++
		case strings.Contains(r.stdout, `"creating"`):
			phases["creating"]++
		default:
			phases["created"]++
		}
		if r := e.bw("delete", "--force", id); r.code != 0 {
			t.Fatalf("run %d: delete --force: %v", i, r)
		}
		assertClean(t, e.root, id, bundle, before)
		if t.Failed() {
			t.Fatalf("run %d (killed after %v) left things behind", i, delay)
		}
	}
	t.Logf("state seen after the kill: %v", phases)
	assertReusable(t, e, id)
}

// A created container whose init died (OOM killer, an admin's kill -9) is
// stopped: a plain delete must clean it without --force.
func TestCreatedContainerWhoseInitWasKilledIsDeletedWithoutForce(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	before := snapHost(t)
	e.mustOK("create", "-b", bundle, id)
	pid := int(e.state(id)["pid"].(float64))
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	stopped := false
	for i := 0; i < 500 && !stopped; i++ {
		stopped = e.state(id)["status"] == "stopped"
		if !stopped {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !stopped {
		t.Fatalf("container with a killed init is %v, want stopped", e.state(id)["status"])
	}
	if r := e.bw("delete", id); r.code != 0 {
		t.Fatalf("delete of a stopped container: %v", r)
	}
	assertClean(t, e.root, id, bundle, before)
	assertReusable(t, e, id)
}

// Like runc, an attached run that is SIGKILLed leaves its container running
// (only a signal it can catch is forwarded); delete --force then cleans up.
func TestKilledAttachedRunLeavesAContainerThatForceDeleteCleans(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	before := snapHost(t)
	cmd := e.startBW("run", "-b", bundle, id)
	running := false
	for i := 0; i < 500 && !running; i++ {
		r := e.bw("state", id)
		running = r.code == 0 && strings.Contains(r.stdout, `"running"`)
		if !running {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !running {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("attached run never reached running")
	}
	cmd.Process.Signal(unix.SIGKILL)
	cmd.Wait()
	st := e.state(id)
	if st["status"] != "running" {
		t.Fatalf("after run was killed: %v, want the container still running", st)
	}
	pid := int(st["pid"].(float64))
	if c, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(c)) != "sleep" {
		t.Fatalf("pid %d is %q, not the payload", pid, c)
	}
	e.mustOK("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		t.Fatal("state dir survived delete --force")
	}
	assertClean(t, e.root, id, bundle, before)
}
