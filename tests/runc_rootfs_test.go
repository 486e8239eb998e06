package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

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

// A mount destination reached through a dangling symlink in the rootfs (a
// component, or the last element) is made where the symlink points, inside
// the rootfs, as runc makes it (mounts.bats "bind mount through a dangling
// symlink"): the image's /etc/hosts is often a symlink into a directory
// that does not exist yet.
func TestMountTargetThroughADanglingSymlink(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(src, []byte("127.0.0.1 bwt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcDir := t.TempDir()
	for _, tc := range []struct {
		name, src, dst, real string
		links                map[string]string
	}{
		{"a dangling component", src, "/etc/hosts", "/data/foo/bar/baz/hosts", map[string]string{"jump": "/data/foo/bar", "etc/hosts": "/jump/baz/hosts"}},
		{"a dangling last element, file", src, "/etc/hosts", "/data/hosts", map[string]string{"etc/hosts": "/data/hosts"}},
		{"a dangling last element, directory", srcDir, "/etc/hosts", "/data/hosts", map[string]string{"etc/hosts": "/data/hosts"}},
	} {
		bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: tc.dst, Source: tc.src, Type: "bind", Options: []string{"bind"}})
			s.Process.Args = []string{"sh", "-c", "stat -c '%d:%i' -- " + tc.real + "; grep -c ' " + tc.real + " ' /proc/self/mounts"}
		})
		rootfs := filepath.Join(bundle, "rootfs")
		for link, target := range tc.links {
			os.RemoveAll(filepath.Join(rootfs, link))
			if err := os.Symlink(target, filepath.Join(rootfs, link)); err != nil {
				t.Fatal(err)
			}
		}
		os.RemoveAll(filepath.Join(rootfs, "data"))
		var st unix.Stat_t
		if err := unix.Stat(tc.src, &st); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%d:%d\n1", unix.Major(st.Dev)<<8|unix.Minor(st.Dev), st.Ino)
		r := e.bw("run", "-b", bundle, e.id())
		if r.code != 0 || strings.TrimSpace(r.stdout) != want {
			t.Errorf("%s: %s through symlinks %v: want %s bound at %s (%q): %v", tc.name, tc.dst, tc.links, tc.src, tc.real, want, r)
		}
	}
}

// A time namespace together with a user namespace: the offsets apply in
// the container (runc's "runc run [timens with userns]").
func TestTimeNamespaceWithAUserNamespace(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("the kernel has no time namespaces")
	}
	e := newEnv(t)
	r := e.sh(func(s *specs.Spec) {
		userNS(s)
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 1337, Nanosecs: 3141519}, "monotonic": {Secs: 7881, Nanosecs: 2718281}}
	}, "cat /proc/self/timens_offsets")
	want := "monotonic 7881 2718281 boottime 1337 3141519"
	if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != want {
		t.Errorf("time and user namespace: want the offsets\n%s\ngot %v", want, r)
	}
}
