package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// A cwd the process user cannot enter but the runtime (root) can is where
// the process starts, for run and exec, as in runc: the runtime enters it
// before dropping to the user and stays there.
func TestCwdOnlyTheRuntimeCanEnter(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "pwd; ls . 2>&1 | grep -o 'Permission denied'"}
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Process.Cwd = "/private"
	})
	if err := os.Mkdir(filepath.Join(bundle, "rootfs", "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := e.bw("run", "-b", bundle, e.id())
	if r.code != 0 || strings.TrimSpace(r.stdout) != "/private\nPermission denied" {
		t.Fatalf("run as uid 1000 in a root-only 0700 cwd: want it to start there (and still be denied reading it): %v", r)
	}
	id, _ := e.detached(func(s *specs.Spec) { s.Root.Readonly = false })
	e.mustOK("exec", id, "mkdir", "-m", "700", "/private")
	if out := e.mustOK("exec", "--user", "1000:1000", "--cwd", "/private", id, "pwd"); strings.TrimSpace(out) != "/private" {
		t.Errorf("exec --user 1000 --cwd /private: %q", out)
	}
}

// createContainer hooks run in the container's rootfs (their cwd), as
// runc runs them: runc's hooks_so.bats binds a library onto ./lib/... from
// such a hook.
func TestCreateContainerHooksRunInTheRootfs(t *testing.T) {
	e := newEnv(t)
	out := filepath.Join(t.TempDir(), "hook-cwd")
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"true"}
		s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "pwd > " + out}}}}
	})
	e.mustOK("run", "-b", bundle, e.id())
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(bundle, "rootfs"); strings.TrimSpace(string(got)) != want {
		t.Errorf("the createContainer hook ran in %q, want the rootfs %q", strings.TrimSpace(string(got)), want)
	}
}
