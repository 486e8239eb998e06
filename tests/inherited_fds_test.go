package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

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

// TestCreatedInitHoldsNoSpentNetnsFd: while a created container waits for
// start, its init no longer holds the network namespace it joined, as
// runc's own suite checks ("detect fd leak as comprehensively as
// possible"): a process exec'd into the container can reach the init's fds
// through /proc/1/fd.
func TestCreatedInitHoldsNoSpentNetnsFd(t *testing.T) {
	e := newEnv(t)
	_, host := hostDirFiles(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		if !oci.HasNamespace(s, specs.NetworkNamespace) {
			t.Fatal("test bug: the bundle has no network namespace of its own")
		}
	})
	id := e.id()
	if r := e.bwWith(bwOpts{extra: host}, "create", "-b", bundle, id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	defer e.bw("delete", "-f", id)
	pid := e.state(id)["pid"]
	dir := fmt.Sprintf("/proc/%v/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		target, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err != nil {
			continue
		}
		if strings.HasPrefix(target, "net:[") {
			t.Errorf("the created init holds fd %s -> %s", ent.Name(), target)
		}
	}
	e.mustOK("start", id)
	if s := e.state(id)["status"]; s != "running" {
		t.Fatalf("after start: %v", s)
	}
}

// TestCreatedInitHoldsNoFdItsCallerLeaked: descriptors the caller of
// `create` leaked without FD_CLOEXEC are closed by the init before it waits
// for start, as runc's init does ("detect fd leak as comprehensively as
// possible" in runc's suite): until start, a process exec'd into the
// container could reach them through /proc/1/fd. The fd --preserve-fds
// asks for stays, and reaches the payload.
func TestCreatedInitHoldsNoFdItsCallerLeaked(t *testing.T) {
	e := newEnv(t)
	hostDir, host := hostDirFiles(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
	})
	id := e.id()
	if r := e.bwWith(bwOpts{extra: host}, "create", "--preserve-fds", "1", "-b", bundle, id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	defer e.bw("delete", "-f", id)
	pid := e.state(id)["pid"]
	dir := fmt.Sprintf("/proc/%v/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	preserved := false
	for _, ent := range ents {
		target, err := os.Readlink(filepath.Join(dir, ent.Name()))
		if err != nil || target != hostDir {
			continue
		}
		if ent.Name() == "3" {
			preserved = true
			continue
		}
		t.Errorf("the created init holds leaked fd %s -> %s", ent.Name(), target)
	}
	if !preserved {
		t.Errorf("the created init lost fd 3, which --preserve-fds 1 passes on")
	}
	e.mustOK("start", id)
	// The payload replaces the init in the same process; wait (bounded)
	// for its execve.
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%v/comm", pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payload did not start: comm %q", comm)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if target, err := os.Readlink(filepath.Join(dir, "3")); err != nil || target != hostDir {
		t.Errorf("the payload's fd 3: %q, %v; want the preserved %s", target, err, hostDir)
	}
	if target, err := os.Readlink(filepath.Join(dir, "4")); err == nil && target == hostDir {
		t.Errorf("the payload holds leaked fd 4 -> %s", target)
	}
}
