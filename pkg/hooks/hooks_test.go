package hooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testState(bundle string) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          "hooktest",
		Status:      specs.StateCreated,
		Pid:         4242,
		Bundle:      bundle,
		Annotations: map[string]string{"org.example/key": "value with \"quotes\""},
	}
}

// script writes an executable /bin/sh script. Absolute paths are used throughout
// because hooks get exactly the environment the config names, i.e. usually no PATH.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(i int) *int { return &i }

func TestRunDeliversStateAndExactEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("BULWARK_SECRET_FROM_RUNTIME", "must-not-leak")
	save := script(t, dir, "save.sh", `/bin/cat > "$1"; /bin/cat /proc/$$/environ > "$2"`)

	tests := []struct {
		name string
		env  []string
	}{
		{"nil env means empty env", nil},
		{"env passed exactly", []string{"FOO=bar", "PATH=/nowhere", "EMPTY="}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stateOut := filepath.Join(dir, "state"+strconv.Itoa(i))
			envOut := filepath.Join(dir, "env"+strconv.Itoa(i))
			st := testState(dir)
			h := specs.Hook{Path: save, Args: []string{save, stateOut, envOut}, Env: tc.env}
			if err := Run("createRuntime", []specs.Hook{h}, st); err != nil {
				t.Fatalf("Run: %v", err)
			}

			raw, err := os.ReadFile(stateOut)
			if err != nil {
				t.Fatal(err)
			}
			var got specs.State
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("hook received invalid JSON %q: %v", raw, err)
			}
			if got.ID != st.ID || got.Pid != st.Pid || got.Bundle != st.Bundle ||
				got.Status != st.Status || got.Version != st.Version ||
				got.Annotations["org.example/key"] != st.Annotations["org.example/key"] {
				t.Fatalf("state mismatch: got %+v want %+v", got, *st)
			}

			rawEnv, err := os.ReadFile(envOut)
			if err != nil {
				t.Fatal(err)
			}
			var gotEnv []string
			for _, kv := range strings.Split(string(rawEnv), "\x00") {
				if kv != "" {
					gotEnv = append(gotEnv, kv)
				}
			}
			if strings.Join(gotEnv, "\n") != strings.Join(tc.env, "\n") {
				t.Fatalf("hook env = %q, want exactly %q", gotEnv, tc.env)
			}
		})
	}
}

func TestRunArgv0(t *testing.T) {
	// busybox dispatches on argv[0], so these only behave as expected when Args[0]
	// really becomes argv[0] rather than being treated as the first argument.
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("argv[0] test needs /bin/busybox: ", err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"true"}, ""},
		{[]string{"false"}, "exit status 1"},
		{[]string{"sh", "-c", "echo argv0=$0 >&2; exit 7"}, "exit status 7: argv0=sh"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := Run("poststart", []specs.Hook{{Path: "/bin/busybox", Args: tc.args}}, testState("/b"))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestRunFailureStopsAndNamesHook(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "third-ran")
	ok := script(t, dir, "ok.sh", "exit 0")
	fail := script(t, dir, "fail.sh", `echo "noise on stdout"; echo "boom: cannot configure network" >&2; exit 3`)
	third := script(t, dir, "third.sh", `: > "`+marker+`"`)

	err := Run("prestart", []specs.Hook{{Path: ok}, {Path: fail}, {Path: third}}, testState(dir))
	if err == nil {
		t.Fatal("Run succeeded although hook [1] exits 3")
	}
	want := "error running prestart hook #1: " + fail + ": exit status 3: boom: cannot configure network"
	if err.Error() != want {
		t.Fatalf("error = %q\nwant    %q", err, want)
	}
	var ee interface{ ExitCode() int }
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("error does not unwrap to an exit error with code 3: %#v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("hook [2] ran after hook [1] failed (stat err %v)", err)
	}
}

func TestRunAllRunsTheRestAfterAFailure(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "third-ran")
	fail := script(t, dir, "fail.sh", `echo "first failure" >&2; exit 1`)
	fail2 := script(t, dir, "fail2.sh", `echo "second failure" >&2; exit 2`)
	third := script(t, dir, "third.sh", `: > "`+marker+`"`)

	err := RunAll("poststart", []specs.Hook{{Path: fail}, {Path: fail2}, {Path: third}}, testState(dir))
	if err == nil {
		t.Fatal("RunAll succeeded although hooks [0] and [1] fail")
	}
	for _, want := range []string{"error running poststart hook #0: " + fail + ": exit status 1: first failure", "error running poststart hook #1: " + fail2 + ": exit status 2: second failure"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error = %q, want it to contain %q", err, want)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("hook [2] did not run after earlier hooks failed: %v", err)
	}
	if err := RunAll("poststop", []specs.Hook{{Path: third}}, testState(dir)); err != nil {
		t.Fatalf("RunAll of a succeeding hook: %v", err)
	}
}

func TestRunInvalidHooks(t *testing.T) {
	dir := t.TempDir()
	ok := script(t, dir, "ok.sh", "exit 0")
	tests := []struct {
		name    string
		hook    specs.Hook
		wantErr string
	}{
		{"relative path", specs.Hook{Path: "ok.sh"}, "error running poststop hook #0: ok.sh: path must be absolute"},
		{"zero timeout", specs.Hook{Path: ok, Timeout: intp(0)}, "timeout must be greater than zero, got 0"},
		{"negative timeout", specs.Hook{Path: ok, Timeout: intp(-5)}, "got -5"},
		{"missing binary", specs.Hook{Path: filepath.Join(dir, "nope")}, "starting hook: fork/exec " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"not executable", specs.Hook{Path: dir}, "starting hook"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Run("poststop", []specs.Hook{tc.hook}, testState(dir))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// alive reports whether pid still exists as a non-zombie process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !alive(pid)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook never wrote its child's pid to %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "sleep.pid")
	// The child sleep stays in the hook's process group; if only the shell were
	// killed it would survive and keep our stderr pipe open.
	h := script(t, dir, "slow.sh", `/bin/sleep 100 & echo $! > "`+pidFile+`.tmp"; /bin/mv "`+pidFile+`.tmp" "`+pidFile+`"; echo "slow hook waiting" >&2; wait`)

	err := Run("createContainer", []specs.Hook{{Path: h, Timeout: intp(1)}}, testState(dir))
	if err == nil {
		t.Fatal("Run returned nil for a hook that sleeps past its 1s timeout")
	}
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timeout (1s)") {
		t.Fatalf("error = %v, want ErrTimeout mentioning the 1s timeout", err)
	}
	if !strings.HasPrefix(err.Error(), "error running createContainer hook #0: "+h+": ") || !strings.Contains(err.Error(), "slow hook waiting") {
		t.Fatalf("error does not name the hook or carry its stderr: %v", err)
	}
	pid := readPid(t, pidFile)
	if !waitGone(pid, 5*time.Second) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the hook's child sleep (pid %d) survived the timeout kill", pid)
	}
}

func TestRunDoesNotHangOnBackgroundedChild(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "daemon.pid")
	// The hook exits 0 at once but its background child inherits stdout and stderr;
	// a plain exec.Cmd.Wait would block for the child's whole 100s life.
	h := script(t, dir, "daemon.sh", `/bin/sleep 100 & echo $! > "`+pidFile+`"`)

	done := make(chan error, 1)
	go func() { done <- Run("poststart", []specs.Hook{{Path: h}}, testState(dir)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("hook exited 0 but Run failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run hung on a hook whose background child holds its output pipes")
	}
	pid := readPid(t, pidFile)
	syscall.Kill(pid, syscall.SIGKILL)
}

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"small", []string{"a", "b"}, "ab"},
		{"exact", []string{strings.Repeat("x", tailSize)}, strings.Repeat("x", tailSize)},
		{"one big write", []string{strings.Repeat("x", tailSize) + "END"}, "..." + strings.Repeat("x", tailSize-3) + "END"},
		{"many writes", []string{strings.Repeat("y", tailSize-1), "12345"}, "..." + strings.Repeat("y", tailSize-5) + "12345"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTailBuffer()
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Fatalf("got %d bytes %q..., want %d bytes", len(got), got[:min(20, len(got))], len(tc.want))
			}
		})
	}
}
