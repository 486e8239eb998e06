package vmcontainer

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSafeCommandDefusesTerminalControls: a guest names its processes, so
// a command line could carry escape sequences for the person's terminal.
func TestSafeCommandDefusesTerminalControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sh -c sleep 600", "sh -c sleep 600"},
		{"evil\x1b]0;owned\x07", `evil\x1b]0;owned\x07`},
		{"cr\rnl\n", `cr\x0dnl\x0a`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"bad\xffutf8", "bad\ufffdutf8"},
		{"ünïcode", "ünïcode"},
	}
	for _, tc := range tests {
		if got := SafeCommand(tc.in); got != tc.want {
			t.Errorf("SafeCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestExecDoesNotFollowASymlinkAtTheSocket: the run directory belongs to
// the container's root (QEMU's monitor listens there), so what sits at the
// exec socket's name is the container's to choose. A symlink there to a
// host socket must not make bulwark exec or ps, host root, connect to that
// socket and hand it the person's process and stdin.
func TestExecDoesNotFollowASymlinkAtTheSocket(t *testing.T) {
	stateDir := t.TempDir()
	run := filepath.Join(stateDir, Dir, filepath.Dir(ExecSocket))
	if err := os.MkdirAll(run, 0o700); err != nil {
		t.Fatal(err)
	}
	hostSock := filepath.Join(t.TempDir(), "host.sock")
	l, err := net.Listen("unix", hostSock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan bool, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		got <- err == nil
	}()
	if err := os.Symlink(hostSock, filepath.Join(stateDir, Dir, ExecSocket)); err != nil {
		t.Fatal(err)
	}
	_, err = Procs(stateDir)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Procs through a symlinked socket: %v; want ErrNotRunning naming what is there", err)
	}
	l.Close()
	if <-got {
		t.Error("the host socket the symlink names got a connection")
	}
	// A socket of the monitor's own is still reached.
	own, err := net.Listen("unix", filepath.Join(run, "own.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := os.Remove(filepath.Join(stateDir, Dir, ExecSocket)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(run, "own.sock"), filepath.Join(stateDir, Dir, ExecSocket)); err != nil {
		t.Fatal(err)
	}
	nc, err := dial(stateDir)
	if err != nil {
		t.Fatalf("dial of the monitor's socket: %v", err)
	}
	nc.Close()
}
