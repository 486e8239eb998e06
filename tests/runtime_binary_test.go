package tests

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
