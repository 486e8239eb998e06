package tests

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// sh runs a busybox shell script in a new container.
func (e *env) sh(mutate func(*specs.Spec), script string) result {
	e.t.Helper()
	return e.runIn(mutate, "sh", "-c", script)
}

// mustSh is sh that fails the test unless the container exited 0, and
// returns its trimmed stdout.
func (e *env) mustSh(mutate func(*specs.Spec), script string) string {
	e.t.Helper()
	r := e.sh(mutate, script)
	if r.code != 0 {
		e.t.Fatalf("container script %q: %v", script, r)
	}
	return strings.TrimSpace(r.stdout)
}

// lines splits output into trimmed "key=value" pairs, the shape the
// container scripts print.
func kv(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = v
		}
	}
	return m
}

// nsLink is what /proc/PID/ns/KIND points to ("net:[4026531840]").
func nsLink(t *testing.T, pid, kind string) string {
	t.Helper()
	l, err := os.Readlink("/proc/" + pid + "/ns/" + kind)
	if err != nil {
		t.Fatalf("namespace %s of %s: %v", kind, pid, err)
	}
	return l
}

// without returns the namespaces of s minus typ.
func without(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

// holder starts a host process that sits in namespaces of its own (the
// `unshare` flags given) so a container can join them by path; it is
// killed and reaped when the test ends.
func holder(t *testing.T, unshareFlags ...string) string {
	t.Helper()
	bin, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) not installed: cannot create namespaces to join")
	}
	cmd := exec.Command(bin, append(unshareFlags, "sleep", "1000")...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start namespace holder: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	self := nsLink(t, "self", "uts")
	// unshare(1) execs sleep once its namespaces exist; until then the
	// links still show ours.
	for i := 0; i < 500; i++ {
		if comm, _ := os.ReadFile("/proc/" + itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if nsLink(t, itoa(pid), "uts") == self && contains(unshareFlags, "--uts") {
		t.Fatalf("namespace holder %d did not unshare", pid)
	}
	return itoa(pid)
}

func itoa(i int) string { return strconv.Itoa(i) }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// runHost runs a host command (ip, unshare...) and returns its output.
func runHost(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
