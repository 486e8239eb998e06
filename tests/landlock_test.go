package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/landlock"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// withLandlock sets the annotation that asks the init to confine the
// payload to the container's mounts.
func withLandlock(s *specs.Spec) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[oci.AnnotationLandlock] = landlock.ModeEnforce
}

// withTmp gives the container a writable tmpfs at /tmp under its
// read-only root.
func withTmp(s *specs.Spec) {
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}})
}

// bwFds runs bulwark with extra files inherited as fds 3, 4, ...: the way
// an engine passes fds with --preserve-fds, and the way a host directory
// fd ends up inside a container.
func (e *env) bwFds(extra []*os.File, args ...string) result {
	e.t.Helper()
	return e.bwWith(bwOpts{extra: extra}, args...)
}

// hostSecretDir is a host directory outside every container mount, holding
// a file "secret" with the given content, and its open fd.
func hostSecretDir(t *testing.T, content string) (string, *os.File) {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "secret"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return d, f
}

// hostProcess starts a process on the host, outside any container, and
// returns its pid: /proc/PID/root is then the host's root.
func hostProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// sharedHostPID removes the pid namespace, so the container sees the host's
// processes, and adds CAP_SYS_PTRACE, which lets it follow /proc/PID/root
// of a root process on the host: a plausible misconfiguration.
func sharedHostPID(s *specs.Spec) {
	s.Linux.Namespaces = without(s.Linux.Namespaces, specs.PIDNamespace)
	c := s.Process.Capabilities
	c.Bounding = append(c.Bounding, "CAP_SYS_PTRACE")
	c.Effective = append(c.Effective, "CAP_SYS_PTRACE")
	c.Permitted = append(c.Permitted, "CAP_SYS_PTRACE")
}

func TestLandlockDeniesHostPathsReachedAroundPivotRoot(t *testing.T) {
	testrootfs.RequireLandlock(t, 1)
	hostPid := strconv.Itoa(hostProcess(t))
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		// script prints the host file's content when it can reach it.
		script string
		fd     bool
		want   string
	}{
		{
			name:   "host root through /proc/PID/root of a host process",
			mutate: sharedHostPID,
			script: "cat /proc/" + hostPid + "/root/$HOSTDIR/secret",
			want:   "host-secret\n",
		},
		{
			name:   "host directory fd passed in",
			script: "cat /proc/self/fd/3/secret",
			fd:     true,
			want:   "host-secret\n",
		},
	}
	for _, tc := range tests {
		for _, confined := range []bool{false, true} {
			name := tc.name + "/unconfined"
			if confined {
				name = tc.name + "/landlock"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t)
				dir, dirFd := hostSecretDir(t, "host-secret\n")
				bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
					s.Process.Args = []string{"sh", "-c", tc.script}
					s.Process.Env = append(s.Process.Env, "HOSTDIR="+dir)
					if tc.mutate != nil {
						tc.mutate(s)
					}
					if confined {
						withLandlock(s)
					}
				})
				var r result
				if tc.fd {
					r = e.bwFds([]*os.File{dirFd}, "run", "--preserve-fds", "1", "-b", bundle, e.id())
				} else {
					r = e.bw("run", "-b", bundle, e.id())
				}
				if !confined {
					// Proves the door is open without Landlock, so the
					// confined case can fail.
					if r.code != 0 || r.stdout != tc.want {
						t.Fatalf("unconfined container could not read the host file (want %q): %v", tc.want, r)
					}
					return
				}
				if r.code == 0 || strings.Contains(r.stdout, strings.TrimSpace(tc.want)) {
					t.Fatalf("Landlock let the container read the host file: %v", r)
				}
				if !strings.Contains(r.stderr, "Permission denied") {
					t.Errorf("want EACCES (Permission denied) from Landlock, got: %v", r)
				}
			})
		}
	}
}

func TestLandlockKeepsReadOnlyMountsReadOnlyThroughAnyPath(t *testing.T) {
	testrootfs.RequireLandlock(t, 1)
	for _, confined := range []bool{false, true} {
		name := "unconfined"
		if confined {
			name = "landlock"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			dir, dirFd := hostSecretDir(t, "ro-data\n")
			// The same host directory is bind-mounted read-only at /data
			// and passed in as fd 3, whose path is the writable host mount.
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
				s.Process.Args = []string{"sh", "-c", `
					echo x > /data/via-mount 2>/dev/null && echo mount=written || echo mount=denied
					cat /proc/self/fd/3/secret >/dev/null && echo fdread=ok || echo fdread=denied
					echo x > /proc/self/fd/3/via-fd && echo fdwrite=written || echo fdwrite=denied
				`}
				if confined {
					withLandlock(s)
				}
			})
			r := e.bwFds([]*os.File{dirFd}, "run", "--preserve-fds", "1", "-b", bundle, e.id())
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			got := kv(r.stdout)
			want := map[string]string{"mount": "denied", "fdread": "ok", "fdwrite": "written"}
			if confined {
				// Read rights follow the inode, whatever mount it is
				// reached through; write rights do not exist for it.
				want["fdwrite"] = "denied"
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (%v)", k, got[k], v, r)
				}
			}
			_, err := os.Stat(filepath.Join(dir, "via-fd"))
			if written := err == nil; written == confined {
				t.Errorf("host file via-fd exists = %v, want %v", written, !confined)
			}
		})
	}
}

func TestLandlockLeavesNormalContainerWorkAlone(t *testing.T) {
	testrootfs.RequireLandlock(t, 1)
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) { withTmp(s); withLandlock(s) }, `
		set -e
		echo hello > /tmp/a
		mkdir /tmp/d
		mv /tmp/a /tmp/d/b
		ln -s /tmp/d/b /tmp/link
		echo cat=$(cat /tmp/link)
		echo sub=$(sh -c 'echo child')
		echo ls=$(ls /usr/local/bin/probe)
		echo null=$(echo discard > /dev/null && echo ok)
		echo shm=$(echo x > /dev/shm/x && cat /dev/shm/x)
		rm /tmp/d/b && rmdir /tmp/d && echo rm=ok
	`)
	got := kv(out)
	want := map[string]string{"cat": "hello", "sub": "child", "ls": "/usr/local/bin/probe", "null": "ok", "shm": "x", "rm": "ok"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q\n%s", k, got[k], v, out)
		}
	}
}

func TestLandlockConfinesExecProcessesToo(t *testing.T) {
	testrootfs.RequireLandlock(t, 1)
	hostPid := strconv.Itoa(hostProcess(t))
	for _, confined := range []bool{false, true} {
		name := "unconfined"
		if confined {
			name = "landlock"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			dir, _ := hostSecretDir(t, "host-secret\n")
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"sleep", "60"}
				sharedHostPID(s)
				if confined {
					withLandlock(s)
				}
			})
			id := e.id()
			e.mustOK("run", "-d", "-b", bundle, id)
			r := e.bw("exec", id, "cat", "/proc/"+hostPid+"/root"+dir+"/secret")
			if reached := r.code == 0 && r.stdout == "host-secret\n"; reached == confined {
				t.Fatalf("exec reached the host init's root = %v, want %v: %v", reached, !confined, r)
			}
		})
	}
}

func TestLandlockIsReportedByProbeAndImpliesNoNewPrivs(t *testing.T) {
	abi := testrootfs.RequireLandlock(t, 1)
	e := newEnv(t)
	m := e.probe(func(s *specs.Spec) {
		// Landlock needs no_new_privs; the annotation alone must bring it.
		s.Process.NoNewPrivileges = false
		withLandlock(s)
	})
	ll, _ := m["landlock"].(map[string]any)
	if got, _ := ll["abi"].(float64); int(got) != abi {
		t.Errorf("probe landlock abi = %v, want %d (%v)", ll["abi"], abi, ll)
	}
	if landlock.ABI() != min(abi, 11) {
		t.Errorf("landlock.ABI() = %d, kernel %d", landlock.ABI(), abi)
	}
	if nnp, _ := m["no_new_privs"].(float64); nnp != 1 {
		t.Errorf("no_new_privs = %v, want 1 under Landlock", m["no_new_privs"])
	}
}

func TestLandlockAnnotationWithUnknownModeIsRefused(t *testing.T) {
	e := newEnv(t)
	r := e.runIn(func(s *specs.Spec) {
		s.Annotations = map[string]string{oci.AnnotationLandlock: "enforcing"}
	}, "true")
	if r.code == 0 || !strings.Contains(r.stderr, oci.AnnotationLandlock) {
		t.Fatalf("want a refusal naming %s: %v", oci.AnnotationLandlock, r)
	}
}
