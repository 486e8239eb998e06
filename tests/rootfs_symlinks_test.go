package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// dirState is a directory's tree as names, modes and contents, to prove a
// host directory was not touched through a symlink in a rootfs.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			lines = append(lines, p+": "+err.Error())
			return nil
		}
		info, _ := d.Info()
		line := fmt.Sprintf("%s %v", p, info.Mode())
		if info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			line += " " + string(b)
		}
		lines = append(lines, line)
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Symlinks in a rootfs are the container author's: mount targets, device
// nodes, masked and read-only paths that go through one must be resolved
// inside the rootfs, never on the host. Each case runs twice: with the
// symlink's target missing from the rootfs (a runtime that follows it on
// the host would find the host dir) and with a same-named dir inside the
// rootfs (the setup must then land there).
func TestRootfsSymlinksCannotRedirectSetupToTheHost(t *testing.T) {
	for _, tc := range []struct {
		name string
		// link is the rootfs entry made a symlink to the host dir.
		link   string
		mutate func(s *specs.Spec)
		// check is a shell test run in the container when it starts; host
		// is the host dir's path, which inside the container names the
		// rootfs's own copy.
		check func(host string) string
	}{
		{"mount target", "etc", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/x", Type: "tmpfs", Source: "tmpfs"})
		}, func(host string) string { return "grep -q ' " + host + "/x ' /proc/mounts" }},
		{"device node", "devlink", func(s *specs.Spec) {
			s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{Path: "/devlink/null", Type: "c", Major: 1, Minor: 3})
		}, func(host string) string { return "test -c " + host + "/null" }},
		{"masked path", "masklink", func(s *specs.Spec) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/masklink/secret", "/masklink")
		}, func(host string) string { return "test ! -s " + host + "/secret" }},
		{"readonly path", "rolink", func(s *specs.Spec) {
			s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/rolink/secret", "/rolink")
		}, func(host string) string { return "! touch " + host + "/new 2>/dev/null" }},
	} {
		for _, inside := range []bool{false, true} {
			name := tc.name + "/target missing in rootfs"
			if inside {
				name = tc.name + "/target present in rootfs"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				host := t.TempDir()
				os.Chmod(host, 0o755)
				if err := os.WriteFile(filepath.Join(host, "secret"), []byte("host secret"), 0o644); err != nil {
					t.Fatal(err)
				}
				before := dirState(t, host)
				bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
					s.Root.Readonly = false
					s.Process.Args = []string{"sh", "-c", tc.check(host) + " && echo checked"}
					tc.mutate(s)
				})
				rootfs := filepath.Join(bundle, "rootfs")
				if err := os.RemoveAll(filepath.Join(rootfs, tc.link)); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(host, filepath.Join(rootfs, tc.link)); err != nil {
					t.Fatal(err)
				}
				if inside {
					if err := os.MkdirAll(filepath.Join(rootfs, host), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(rootfs, host, "secret"), []byte("rootfs copy"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				r := e.bw("run", "-b", bundle, e.id())
				t.Logf("run: %v", r)
				if after := dirState(t, host); after != before {
					t.Fatalf("host directory changed through the rootfs symlink:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), host) {
					t.Fatalf("a mount landed on the host dir %s", host)
				}
				switch {
				case inside && (r.code != 0 || !strings.Contains(r.stdout, "checked")):
					// With the target inside the rootfs there is nothing
					// to refuse: the setup must have happened there.
					t.Errorf("setup through an in-rootfs symlink did not land inside: %v", r)
				case !inside && r.code != 0 && !strings.Contains(r.stderr, tc.link):
					t.Errorf("refused without naming the path: %v", r)
				}
			})
		}
	}
}
