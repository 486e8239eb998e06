package tests

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// learnedProfile is the part of a learned profile file the tests read.
type learnedProfile struct {
	Base           string   `json:"base"`
	Capabilities   []string `json:"capabilities"`
	Writable       []string `json:"writable"`
	WritableRootfs bool     `json:"writableRootfs"`
	Observed       struct {
		Syscalls map[string][]string `json:"syscalls"`
		Written  []string            `json:"written"`
		Executed []string            `json:"executed"`
		Devices  []string            `json:"devices"`
	} `json:"observed"`
	Seccomp struct {
		Syscalls []struct {
			Names  []string `json:"names"`
			Action string   `json:"action"`
		} `json:"syscalls"`
	} `json:"seccomp"`
}

// learn runs `bulwark learn --name ID -o OUT [flags] ROOTFS -- CMD...`.
func (e *env) learn(out string, flags []string, rootfs string, cmd ...string) result {
	e.t.Helper()
	args := append([]string{"learn", "--name", e.id(), "-o", out}, flags...)
	args = append(append(args, rootfs, "--"), cmd...)
	// Every recorded call is a round trip through the seccomp listener, so
	// a script with many calls (the escape suite's) needs far longer than
	// a plain run on a loaded host: it once took 52 s alone at load 13.
	// Measured since (2026-12-07, load 10-16 on 2 cores): the escape
	// script learns in 6.3-7.1 s of CPU against 4.6 s for the same script
	// without learning, 42-45k recorded calls at about 40 us each, and
	// 7-14 s wall; the log line says what each learn took.
	r := e.bwWith(bwOpts{timeout: learnTimeout}, args...)
	e.t.Logf("bulwark learn %s: %v wall, %v CPU", strings.Join(cmd, " "), r.took.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
	return r
}

const learnTimeout = 5 * time.Minute

func readLearned(t *testing.T, path string) *learnedProfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := new(learnedProfile)
	if err := json.Unmarshal(b, p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

// allowedNames are the syscalls the profile's allow rules name.
func (p *learnedProfile) allowedNames() []string {
	var out []string
	for _, sc := range p.Seccomp.Syscalls {
		if sc.Action == "SCMP_ACT_ALLOW" {
			for _, n := range sc.Names {
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// A Debian shell script that forks, writes a file and reads it back is
// learned in one run; the profile allows exactly the calls it made (and
// records the file, the programs and the device), runs it again unchanged,
// and refuses a call the recording never saw with ENOSYS, which explain
// names.
func TestLearnedProfileRunsTheWorkloadAndRefusesWhatItNeverDid(t *testing.T) {
	e := newEnv(t)
	rootfs := testrootfs.RequireDebian(t)
	out := filepath.Join(t.TempDir(), "sh.json")
	script := "echo hi > /tmp/x; cat /tmp/x; ls / >/dev/null"
	r := e.learn(out, nil, rootfs, "/bin/sh", "-c", script)
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("learn: %v", r)
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
	for _, w := range []string{"wrote " + out, "allowed ", "capabilities: none", "writes only under /tmp", "/usr/bin/cat"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("summary lacks %q: %s", w, r.stderr)
		}
	}
	p := readLearned(t, out)
	if p.Base != "default" {
		t.Errorf("base %q, want default", p.Base)
	}
	observed := make([]string, 0, len(p.Observed.Syscalls))
	for n := range p.Observed.Syscalls {
		observed = append(observed, n)
	}
	slices.Sort(observed)
	// The profile allows what was seen and nothing else (but the
	// kernel's return paths, allowed in every learned profile; none of
	// the init's own calls: it installs the filter and execs back to back).
	want := slices.Clone(observed)
	for _, n := range []string{"exit", "exit_group", "restart_syscall", "rt_sigreturn"} {
		if !slices.Contains(want, n) {
			want = append(want, n)
		}
	}
	slices.Sort(want)
	if got := p.allowedNames(); !slices.Equal(got, want) {
		t.Errorf("allow rules name %v, want the recording's %v", got, want)
	}
	for _, want := range []string{"execve", "openat", "write", "read", "wait4", "exit_group"} {
		if _, ok := p.Observed.Syscalls[want]; !ok {
			t.Errorf("the recording missed %s: %v", want, observed)
		}
	}
	if !slices.Contains(observed, "vfork") && !slices.Contains(observed, "clone") && !slices.Contains(observed, "fork") {
		t.Errorf("the shell forked, but no fork call was recorded: %v", observed)
	}
	for _, never := range []string{"mkdir", "socket", "ptrace", "mount"} {
		if slices.Contains(observed, never) {
			t.Errorf("the recording saw %s, which the script never calls", never)
		}
	}
	if !slices.Contains(p.Observed.Written, "/tmp/x") || !slices.Equal(p.Writable, []string{"/tmp"}) {
		t.Errorf("written %v, writable %v; want /tmp/x written, writable [/tmp]", p.Observed.Written, p.Writable)
	}
	for _, x := range []string{"/bin/sh", "/usr/bin/cat", "/usr/bin/ls"} {
		if !slices.Contains(p.Observed.Executed, x) {
			t.Errorf("executed %v, want %s", p.Observed.Executed, x)
		}
	}
	if !slices.Contains(p.Observed.Devices, "/dev/null") {
		t.Errorf("devices %v, want /dev/null", p.Observed.Devices)
	}

	r = e.userRun(nil, []string{"--profile", out}, rootfs, "/bin/sh", "-c", script)
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("the workload under its learned profile: %v", r)
	}
	r = e.userRun(nil, []string{"--profile", out}, rootfs, "/bin/sh", "-c", script+"; mkdir /tmp/d")
	if r.code == 0 || !strings.Contains(r.stderr, "Function not implemented") {
		t.Fatalf("mkdir, never recorded, was not refused with ENOSYS: %v", r)
	}
	r = e.bw("explain", "--profile", out, "mkdir")
	if r.code != 0 || !strings.Contains(r.stdout, "mkdir fails with ENOSYS") {
		t.Errorf("explain mkdir: %v", r)
	}
	r = e.bw("explain", "--profile", out, "openat")
	if r.code != 0 || !strings.Contains(r.stdout, "openat allowed") || !strings.Contains(r.stdout, "seen in the recording") {
		t.Errorf("explain openat: %v", r)
	}
}

// The arguments Bulwark's rules look at are learned too: a Python program
// that opened an AF_UNIX socket may open one again, but an AF_INET6
// socket, a family the default profile allows, is refused.
func TestLearnedProfilePinsSocketFamilies(t *testing.T) {
	e := newEnv(t)
	rootfs := testrootfs.RequireDebian(t)
	out := filepath.Join(t.TempDir(), "py.json")
	prog := "import socket, sys; socket.socket(getattr(socket, sys.argv[1])).close(); print('socket', sys.argv[1])"
	r := e.learn(out, nil, rootfs, "python3", "-c", prog, "AF_UNIX")
	if r.code != 0 || r.stdout != "socket AF_UNIX\n" {
		t.Fatalf("learn: %v", r)
	}
	p := readLearned(t, out)
	// AF_UNIX (1), SOCK_STREAM (1).
	if got := p.Observed.Syscalls["socket"]; !slices.Equal(got, []string{"0x1/0x1"}) {
		t.Errorf("socket arguments %v, want [0x1/0x1]", got)
	}
	r = e.userRun(nil, []string{"--profile", out}, rootfs, "python3", "-c", prog, "AF_UNIX")
	if r.code != 0 || r.stdout != "socket AF_UNIX\n" {
		t.Fatalf("the workload under its learned profile: %v", r)
	}
	r = e.userRun(nil, []string{"--profile", out}, rootfs, "python3", "-c", prog, "AF_INET6")
	if r.code == 0 || !strings.Contains(r.stderr, "Errno 38") {
		t.Fatalf("an AF_INET6 socket was not refused with ENOSYS: %v", r)
	}
	// --log-denied names the refused call and the rules that can have
	// refused it, from the kernel's record of the filter's decision.
	// The kernel lets about 10 audit records per 5 s through without
	// auditd: other tests' kills can use them up, so try again after the
	// window.
	for try := 0; ; try++ {
		r = e.userRun(nil, []string{"--profile", out, "--log-denied"}, rootfs, "python3", "-c", prog, "AF_INET6")
		if r.code != 0 && strings.Contains(r.stderr, "bulwark: denied: socket by pid ") &&
			strings.Contains(r.stderr, "refused with EAFNOSUPPORT or ENOSYS, by the default action (no rule for its arguments)") {
			break
		}
		if try == 2 {
			t.Fatalf("--log-denied printed no line for the refused socket: %v", r)
		}
		time.Sleep(6 * time.Second)
	}
	r = e.bw("seccomp", "explain", out, "socket", "10", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "ENOSYS") {
		t.Errorf("seccomp explain socket AF_INET6: %v", r)
	}
	r = e.bw("seccomp", "diff", out)
	if r.code != 0 || !strings.Contains(r.stdout, "allows, default does not (0)") || !strings.Contains(r.stdout, "+ mkdir") {
		t.Errorf("seccomp diff against default: %v", r)
	}
}

// Capabilities are found by trial: granted CHOWN, a workload that chowns
// keeps it, one that does not loses it and is then refused a chown.
func TestLearnKeepsOnlyTheCapabilitiesTheWorkloadNeeds(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := t.TempDir()
	needs, never := filepath.Join(dir, "needs.json"), filepath.Join(dir, "never.json")
	chown := "touch /tmp/f && chown 1:1 /tmp/f"
	if r := e.learn(needs, []string{"--cap-add", "CHOWN"}, rootfs, "sh", "-c", chown); r.code != 0 {
		t.Fatalf("learn: %v", r)
	}
	if got := readLearned(t, needs).Capabilities; !slices.Equal(got, []string{"CAP_CHOWN"}) {
		t.Errorf("a workload that chowns kept %v, want [CAP_CHOWN]", got)
	}
	if r := e.userRun(nil, []string{"--profile", needs}, rootfs, "sh", "-c", chown); r.code != 0 {
		t.Errorf("chown under the profile that kept CAP_CHOWN: %v", r)
	}
	if r := e.learn(never, []string{"--cap-add", "CHOWN"}, rootfs, "sh", "-c", "touch /tmp/f && echo ok"); r.code != 0 {
		t.Fatalf("learn: %v", r)
	}
	p := readLearned(t, never)
	if len(p.Capabilities) != 0 {
		t.Errorf("a workload that never chowns kept %v", p.Capabilities)
	}
	// chown itself is allowed by seccomp here (learned from the other
	// profile merged in), so the refusal is the capability's: EPERM.
	merged := filepath.Join(dir, "merged.json")
	data, err := os.ReadFile(never)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(merged, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := e.learn(merged, []string{"--merge", "--no-cap-trials"}, rootfs, "sh", "-c", "touch /tmp/f && chown 0:0 /tmp/f")
	if r.code != 0 {
		t.Fatalf("learn --merge: %v", r)
	}
	m := readLearned(t, merged)
	if _, ok := m.Observed.Syscalls["chown"]; !ok {
		if _, ok := m.Observed.Syscalls["fchownat"]; !ok {
			t.Errorf("the merged profile lacks the chown of the second run: %v", m.Observed.Syscalls)
		}
	}
	r = e.userRun(nil, []string{"--profile", never}, rootfs, "sh", "-c", chown)
	if r.code == 0 {
		t.Errorf("chown ran under a profile learned from a workload that never chowned: %v", r)
	}
}

// Bad input: a malformed or unknown-syscall profile is refused naming the
// file and field before anything exists; a workload that fails still gets
// its profile, with a warning; a workload that cannot start gets none.
func TestLearnBadInput(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if r := e.learn(good, nil, rootfs, "true"); r.code != 0 {
		t.Fatalf("learn true: %v", r)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	unknown := strings.Replace(string(b), `"exit_group"`, `"fro"`, 1)
	if unknown == string(b) {
		t.Fatalf("exit_group not in %s", b)
	}
	for _, tc := range []struct{ name, content, want string }{
		{"malformed.json", "{\n  \"bulwarkProfile\": 1,\n  oops\n}", "line 3"},
		{"unknown-syscall.json", unknown, `unknown syscall "fro"`},
		{"wrong-version.json", `{"bulwarkProfile": 7, "base": "default"}`, "bulwarkProfile"},
		{"unknown-field.json", strings.Replace(string(b), `"base"`, `"bsae"`, 1), "bsae"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(dir, tc.name)
			if err := os.WriteFile(f, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.userRun(nil, []string{"--profile", f}, rootfs, "true")
			if r.code == 0 || !strings.Contains(r.stderr, f) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want an error naming %s and %q: %v", f, tc.want, r)
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
			r = e.bw("explain", "--profile", f, "read")
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("explain: want an error naming %q: %v", tc.want, r)
			}
		})
	}

	failed := filepath.Join(dir, "failed.json")
	r := e.learn(failed, nil, rootfs, "sh", "-c", "exit 3")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: the workload exited with status 3") {
		t.Errorf("a failing workload: %v", r)
	}
	if _, err := os.Stat(failed); err != nil {
		t.Errorf("no profile for a workload that failed: %v", err)
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])

	none := filepath.Join(dir, "none.json")
	r = e.learn(none, nil, rootfs, "/no/such/program")
	if r.code == 0 {
		t.Errorf("learning a program that does not exist succeeded: %v", r)
	}
	if _, err := os.Stat(none); err == nil {
		t.Errorf("a profile was written for a workload that never started")
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])
	if ents, _ := os.ReadDir(dir); slices.ContainsFunc(ents, func(d os.DirEntry) bool { return strings.HasPrefix(d.Name(), ".") }) {
		t.Errorf("temporary files left in %s: %v", dir, ents)
	}

	r = e.learn(filepath.Join(dir, "x.json"), []string{"--profile", good}, rootfs, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "built-in profile") {
		t.Errorf("learning under a learned file: %v", r)
	}
	r = e.learn(filepath.Join(dir, "x.json"), []string{"--detach"}, rootfs, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--detach") {
		t.Errorf("learning a detached run: %v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
		t.Errorf("a refused learn wrote a profile")
	}
}

// Writes are narrowed to where the workload wrote: on a writable rootfs, a
// workload learned writing under /var/lib/app may write there again, but
// a write to /etc or to /tmp is refused by Landlock with EACCES, and
// explain says why.
func TestLearnedProfileRefusesWritesOutsideTheLearnedPaths(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	if err := os.MkdirAll(filepath.Join(rootfs, "var/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "w.json")
	script := "mkdir -p /var/lib/app && echo x > /var/lib/app/f && cat /var/lib/app/f"
	r := e.learn(out, []string{"--writable"}, rootfs, "sh", "-c", script)
	if r.code != 0 || r.stdout != "x\n" {
		t.Fatalf("learn: %v", r)
	}
	p := readLearned(t, out)
	if !slices.Equal(p.Writable, []string{"/var/lib"}) || !p.WritableRootfs {
		t.Fatalf("writable %v, writableRootfs %v; want [/var/lib] and true (written: %v)", p.Writable, p.WritableRootfs, p.Observed.Written)
	}
	if r := e.userRun(nil, []string{"--profile", out}, rootfs, "sh", "-c", script+" && echo y > /var/lib/app/g"); r.code != 0 {
		t.Fatalf("the workload under its learned profile: %v", r)
	}
	for _, f := range []string{"/etc/evil", "/tmp/evil"} {
		r := e.userRun(nil, []string{"--profile", out}, rootfs, "sh", "-c", "echo x > "+f)
		if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("a write to %s was not refused with EACCES: %v", f, r)
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/evil")); err == nil {
		t.Errorf("/etc/evil was written")
	}
	r = e.bw("explain", "--profile", out, "/etc/evil")
	if r.code != 0 || !strings.Contains(r.stdout, "writes refused with EACCES") || !strings.Contains(r.stdout, "/var/lib") {
		t.Errorf("explain /etc/evil: %v", r)
	}
}

// A recording ended by --duration or by the person's Ctrl-C still writes
// its profile, says how the workload ended, and leaves nothing behind.
func TestLearnEndedByDurationOrInterruptWritesTheProfile(t *testing.T) {
	e := newEnv(t)
	rootfs := testrootfs.RequireDebian(t)
	dir := t.TempDir()
	sleeper := []string{"python3", "-c", "import time; print('up', flush=True); time.sleep(60)"}

	out := filepath.Join(dir, "duration.json")
	start := time.Now()
	// python3 is its pid namespace's init and has no SIGTERM handler: the
	// SIGTERM is ignored and the SIGKILL after the grace period ends it.
	r := e.learn(out, []string{"--duration", "1s"}, rootfs, sleeper...)
	if r.code != 0 || !strings.Contains(r.stderr, "--duration 1s ended the workload") {
		t.Fatalf("learn --duration: %v", r)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("--duration 1s took %s", d)
	}
	if p := readLearned(t, out); len(p.Observed.Syscalls) == 0 {
		t.Errorf("no syscalls recorded before --duration ended the run")
	}
	e.assertUserRunGone(e.ids[len(e.ids)-1])

	out = filepath.Join(dir, "interrupt.json")
	id := e.id()
	cmd := exec.Command(bulwarkBin, append([]string{"--root", e.root, "learn", "--name", id, "-o", out, rootfs, "--"}, sleeper...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "up\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the workload did not start: %q, %v; %s", line, err, stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("learn interrupted: %v; %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "KeyboardInterrupt") || !strings.Contains(stderr.String(), "exited with status 130") {
		t.Errorf("the interrupt did not reach the workload, or learn did not say so: %s", stderr.String())
	}
	if p := readLearned(t, out); len(p.Observed.Syscalls) == 0 {
		t.Errorf("no syscalls recorded before the interrupt")
	}
	e.assertUserRunGone(id)
}

// An image from the store is learned and run the same way as a rootfs
// directory, and the learned profile refuses what the recording never saw.
func TestLearnFromAnImage(t *testing.T) {
	e := newEnv(t)
	dr := imageDataRoot(t, "example.com/busy:learn")
	out := filepath.Join(t.TempDir(), "img.json")
	script := "echo hi > /tmp/x && cat /tmp/x"
	id := e.id()
	r := e.bw("--data-root", dr, "learn", "--name", id, "-o", out, "example.com/busy:learn", "--", "sh", "-c", script)
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("learn IMAGE: %v", r)
	}
	e.assertUserRunGone(id)
	if p := readLearned(t, out); !slices.Equal(p.Writable, []string{"/tmp"}) {
		t.Errorf("writable %v, want [/tmp]", p.Writable)
	}
	r = e.bw("--data-root", dr, "run", "--name", e.id(), "--profile", out, "example.com/busy:learn", "--", "sh", "-c", script)
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("the image under its learned profile: %v", r)
	}
	r = e.bw("--data-root", dr, "run", "--name", e.id(), "--profile", out, "example.com/busy:learn", "--", "sh", "-c", "mkdir /tmp/d")
	if r.code == 0 || !strings.Contains(r.stderr, "Function not implemented") {
		t.Errorf("mkdir, never recorded, was not refused with ENOSYS: %v", r)
	}
}

// A learning run whose `bulwark learn` is SIGKILLed, in the recording or
// in a capability trial, leaves nothing: its guard removes the container
// (whose workload's calls would otherwise all fail with ENOSYS once the
// recorder is gone), its state and user namespace range, and no profile,
// partial or whole, is written.
func TestLearnKilledLeavesNothing(t *testing.T) {
	e := newEnv(t)
	rootfs := testrootfs.RequireDebian(t)
	for _, tc := range []struct {
		name  string
		flags []string
		// wait is what learn's stdout or stderr shows once it is in the
		// phase to kill.
		wait  string
		sleep string
	}{
		{"recording", nil, "up\n", "60"},
		// webapp grants CAP_NET_BIND_SERVICE, so a trial without it
		// follows a recording that ends on its own.
		{"capability trial", []string{"--profile", "webapp"}, "trying the workload without", "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "p.json")
			id := e.id()
			args := append([]string{"--root", e.root, "learn", "--name", id, "-o", out}, tc.flags...)
			args = append(args, rootfs, "--", "python3", "-c", "import time; print('up', flush=True); time.sleep("+tc.sleep+")")
			cmd := exec.Command(bulwarkBin, args...)
			// A file, not a pipe: a workload that survived the kill (the
			// failure this test looks for) would hold a pipe open and
			// hang Wait.
			logs, err := os.CreateTemp(t.TempDir(), "learn-log")
			if err != nil {
				t.Fatal(err)
			}
			defer logs.Close()
			cmd.Stdout, cmd.Stderr = logs, logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			logText := func() string { b, _ := os.ReadFile(logs.Name()); return string(b) }
			reached := false
			for i := 0; i < 600 && !reached; i++ {
				reached = strings.Contains(logText(), tc.wait)
				time.Sleep(50 * time.Millisecond)
			}
			if tc.name == "capability trial" && reached {
				// Let the trial's container start before the kill.
				time.Sleep(time.Second)
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if !reached {
				t.Fatalf("learn never showed %q:\n%s", tc.wait, logText())
			}
			gone := false
			for i := 0; i < 600 && !gone; i++ {
				r := e.bw("ls", "-q")
				gone = r.code == 0 && strings.TrimSpace(r.stdout) == ""
				if !gone {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !gone {
				t.Fatalf("learn's containers still listed 60 s after it was killed: %v", e.bw("ls"))
			}
			e.assertUserRunGone(id)
			e.assertUserRunGone(id + "-no-cap_net_bind_service")
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Errorf("a killed learn left %v next to its profile", ents)
			}
			for i := 0; i < 100; i++ {
				if out, _ := exec.Command("pgrep", "-f", "time.sleep\\("+tc.sleep+"\\)").Output(); len(out) == 0 {
					break
				}
				if i == 99 {
					t.Errorf("the workload still runs after its learn was killed")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
