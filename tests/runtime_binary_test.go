package tests

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// runtimeCopy is a private copy of the runtime for attacks on its binary:
// if a defense is broken, the copy is what gets damaged.
func runtimeCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "bulwark")
	in, err := os.Open(bulwarkBin)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// waitStopped waits for the container's payload to finish on its own.
func waitStopped(t *testing.T, e *env, id string, poke func()) {
	t.Helper()
	for i := 0; i < 600; i++ {
		if e.state(id)["status"] == "stopped" {
			return
		}
		if poke != nil {
			poke()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s never stopped", id)
}

// CVE-2019-5736: a container process that gets the runtime re-executed
// inside it (here: a script whose interpreter is /proc/self/exe, run by
// `bulwark exec`) must not be able to reopen that executable for writing.
// exeattack, the container's pid 1, holds an O_PATH handle on the runtime's
// exe and retries O_WRONLY after the runtime process has gone.
func TestContainerCannotReopenTheRuntimeBinaryForWriting(t *testing.T) {
	for _, tc := range []struct {
		name string
		// attack is exeattack's command line; trigger is what the test
		// execs into the container until the attacker reports.
		attack  []string
		trigger []string
		allowed []string
		// mayRefuseExec: the kernel may refuse to execute the runtime's
		// binary inside the container at all (bulwark's init runs from a
		// detached mount, which the container's exec cannot resolve); then
		// the attacker never sees a runtime process, which is a pass only
		// if every trigger exec failed.
		mayRefuseExec bool
	}{
		{
			// runc's CVE: the runtime's exec runs a script whose interpreter
			// is the runtime itself.
			name:          "via a #!/proc/self/exe script",
			attack:        []string{"/usr/local/bin/exeattack", "-timeout", "5s"},
			trigger:       []string{"/bin/evil"},
			allowed:       []string{"EROFS", "EACCES", "EPERM"},
			mayRefuseExec: true,
		},
		{
			// The same, without the script: exec the runtime by the magic link.
			name:          "via exec of /proc/self/exe",
			attack:        []string{"/usr/local/bin/exeattack", "-timeout", "5s"},
			trigger:       []string{"/proc/self/exe", "attack"},
			allowed:       []string{"EROFS", "EACCES", "EPERM"},
			mayRefuseExec: true,
		},
		{
			// The exec'd bulwark:init sits in the container's pid namespace
			// before its execve; non-dumpable, neither its exe nor its fds
			// may be reachable through /proc.
			name:    "via /proc/PID of the exec'd bulwark:init",
			attack:  []string{"/usr/local/bin/exeattack", "-comm", "bulwark:init", "-timeout", "20s"},
			trigger: []string{"true"},
			allowed: []string{"EACCES", "EPERM"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bin := runtimeCopy(t)
			sum := sha256File(t, bin)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = tc.attack })
			if err := os.WriteFile(filepath.Join(bundle, "rootfs/bin/evil"), []byte("#!/proc/self/exe\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(filepath.Join(t.TempDir(), "attack.out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			id := e.id()
			if r := e.bwWith(bwOpts{bin: bin, stdout: out}, "run", "-d", "-b", bundle, id); r.code != 0 {
				t.Fatalf("run -d: %v", r)
			}
			execs, refused := 0, 0
			waitStopped(t, e, id, func() {
				execs++
				r := e.bwWith(bwOpts{bin: bin}, append([]string{"exec", id}, tc.trigger...)...)
				if execs == 1 {
					t.Logf("first exec of %v: %v", tc.trigger, r)
				}
				if r.code != 0 && (strings.Contains(r.stderr, "not running") || !strings.Contains(e.bw("state", id).stdout, `"running"`)) {
					// The attacker timed out and the container stopped
					// before or during this trigger: it proves nothing.
					execs--
					return
				}
				if r.code != 0 && strings.Contains(r.stderr, "exec "+tc.trigger[0]) {
					refused++
				} else if r.code != 0 {
					t.Logf("exec %d of %v failed otherwise: %v", execs, tc.trigger, r)
				}
			})
			b, _ := os.ReadFile(out.Name())
			got := strings.TrimSpace(string(b))
			t.Logf("exeattack: %q after %d exec(s), %d refused by the kernel", got, execs, refused)
			ok := false
			for _, a := range tc.allowed {
				ok = ok || got == a
			}
			if tc.mayRefuseExec && got == "NOTFOUND" && execs > 0 && refused == execs {
				ok = true
			}
			if !ok {
				t.Errorf("exeattack reported %q, want one of %v (NOTFOUND: the attack never saw the runtime)", got, tc.allowed)
			}
			if s := sha256File(t, bin); s != sum {
				t.Fatalf("runtime binary changed: %s -> %s", sum, s)
			}
		})
	}
}

type fdleakReport struct {
	Getcwd string `json:"getcwd"`
	Cwd    struct {
		Outside bool   `json:"outside"`
		Reason  string `json:"reason"`
	} `json:"cwd"`
	FDs []struct {
		FD      int    `json:"fd"`
		Target  string `json:"target"`
		Outside bool   `json:"outside"`
		Reason  string `json:"reason"`
	} `json:"fds"`
	Escapes int `json:"escapes"`
}

// hostDirFiles opens a host directory at fds 3..7 of the runtime, the way a
// careless caller (a shell's `exec 7</`, a leaky engine) leaves descriptors
// without O_CLOEXEC.
func hostDirFiles(t *testing.T) (string, []*os.File) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "host-marker"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	var fs []*os.File
	for i := 0; i < 5; i++ {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fs = append(fs, f)
	}
	return dir, fs
}

func parseFdleak(t *testing.T, what string, r result) fdleakReport {
	t.Helper()
	var rep fdleakReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%s: fdleak output: %v\n%v", what, err, r)
	}
	return rep
}

// assertNoEscape fails on a cwd or fd >= 3 that leads out of the
// container. Stdio (0-2) is the caller's to give and is not judged; fds the
// payload's own Go runtime opens (cgroup cpu files, inside the container)
// are judged like any other.
func assertNoEscape(t *testing.T, what, hostDir string, rep fdleakReport) {
	t.Helper()
	if rep.Cwd.Outside || strings.Contains(rep.Getcwd, "unreachable") || strings.HasPrefix(rep.Getcwd, "error") {
		t.Errorf("%s: cwd leads out of the container: %+v", what, rep)
	}
	for _, f := range rep.FDs {
		if f.FD > 2 && (f.Outside || strings.HasPrefix(f.Target, hostDir)) {
			t.Errorf("%s: fd %d (%s) leads out of the container: %s", what, f.FD, f.Target, f.Reason)
		}
	}
}

// CVE-2024-21626: descriptors the runtime inherited, and a cwd pointing at
// them through /proc/self/fd, must not give the container's init or an
// exec'd process a handle on the host's filesystem.
func TestInheritedHostFdsDoNotReachTheContainer(t *testing.T) {
	e := newEnv(t)
	hostDir, host := hostDirFiles(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"/usr/local/bin/fdleak"} })

	r := e.bwWith(bwOpts{extra: host}, "run", "-b", bundle, e.id())
	if r.code != 0 {
		t.Fatalf("run fdleak: %v", r)
	}
	assertNoEscape(t, "init", hostDir, parseFdleak(t, "init", r))

	long := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	e.bwWith(bwOpts{extra: host}, "run", "-d", "-b", long, id)
	if s := e.state(id)["status"]; s != "running" {
		t.Fatalf("container: %v", s)
	}
	r = e.bwWith(bwOpts{extra: host}, "exec", id, "/usr/local/bin/fdleak")
	if r.code != 0 {
		t.Fatalf("exec fdleak: %v", r)
	}
	assertNoEscape(t, "exec", hostDir, parseFdleak(t, "exec", r))

	// The attack of the CVE: a cwd of /proc/self/fd/N resolved while the
	// runtime still holds N. It must fail, or leave the cwd inside.
	for _, tc := range []struct {
		name string
		run  func(cwd string) result
	}{
		{"init", func(cwd string) result {
			b := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.Args = []string{"/usr/local/bin/fdleak"}
				s.Process.Cwd = cwd
			})
			return e.bwWith(bwOpts{extra: host}, "run", "-b", b, e.id())
		}},
		{"exec", func(cwd string) result {
			return e.bwWith(bwOpts{extra: host}, "exec", "--cwd", cwd, id, "/usr/local/bin/fdleak")
		}},
	} {
		for fd := 3; fd <= 9; fd++ {
			cwd := fmt.Sprintf("/proc/self/fd/%d", fd)
			r := tc.run(cwd)
			what := tc.name + " cwd " + cwd
			if r.code != 0 {
				if !strings.Contains(r.stderr, "process.cwd") && !strings.Contains(r.stderr, "cwd") {
					t.Errorf("%s refused without naming the cwd: %v", what, r)
				}
				continue
			}
			assertNoEscape(t, what, hostDir, parseFdleak(t, what, r))
		}
	}
}

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
