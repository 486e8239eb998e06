package seccomp

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSendToListener(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	// Any fd proves the SCM_RIGHTS path; a file with known content proves the
	// agent got the same open file and not just a number.
	payload := filepath.Join(dir, "payload")
	if err := os.WriteFile(payload, []byte("seccomp-fd-stand-in"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(payload)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	big := strings.Repeat("m", 300<<10) // larger than a unix socket buffer
	tests := []struct {
		name     string
		st       *specs.ContainerProcessState
		wantFds  []string
		wantMeta string
	}{
		{
			name:    "fds filled in when empty",
			st:      &specs.ContainerProcessState{Version: specs.Version, Pid: 42, Metadata: "meta", State: specs.State{ID: "c1", Status: specs.StateCreating}},
			wantFds: []string{specs.SeccompFdName}, wantMeta: "meta",
		},
		{
			name:    "caller's fd name kept",
			st:      &specs.ContainerProcessState{Version: specs.Version, Pid: 43, Fds: []string{"myFd"}},
			wantFds: []string{"myFd"},
		},
		{
			name:    "state bigger than the socket buffer arrives whole",
			st:      &specs.ContainerProcessState{Version: specs.Version, Pid: 44, Metadata: big},
			wantFds: []string{specs.SeccompFdName}, wantMeta: big,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fdsBefore := append([]string(nil), tc.st.Fds...)
			type res struct {
				st  specs.ContainerProcessState
				fd  int
				err error
			}
			ch := make(chan res, 1)
			go func() {
				_ = ln.SetDeadline(time.Now().Add(30 * time.Second))
				st, fd, err := acceptState(ln)
				ch <- res{st, fd, err}
			}()
			if err := SendToListener(sock, int(f.Fd()), tc.st); err != nil {
				t.Fatalf("SendToListener: %v", err)
			}
			r := <-ch
			if r.err != nil {
				t.Fatalf("agent: %v", r.err)
			}
			defer unix.Close(r.fd)
			buf := make([]byte, 64)
			n, err := unix.Pread(r.fd, buf, 0)
			if err != nil || string(buf[:n]) != "seccomp-fd-stand-in" {
				t.Errorf("received fd reads %q, %v; want the sent file", buf[:n], err)
			}
			if strings.Join(r.st.Fds, ",") != strings.Join(tc.wantFds, ",") {
				t.Errorf("state fds = %v, want %v", r.st.Fds, tc.wantFds)
			}
			if r.st.Pid != tc.st.Pid || r.st.Metadata != tc.wantMeta || r.st.State.ID != tc.st.State.ID {
				t.Errorf("agent got pid %d metadata len %d id %q; want %d, %d, %q", r.st.Pid, len(r.st.Metadata), r.st.State.ID, tc.st.Pid, len(tc.wantMeta), tc.st.State.ID)
			}
			if strings.Join(tc.st.Fds, ",") != strings.Join(fdsBefore, ",") {
				t.Errorf("SendToListener modified the caller's state: Fds %v -> %v", fdsBefore, tc.st.Fds)
			}
		})
	}
}

func TestSendToListenerErrors(t *testing.T) {
	dir := t.TempDir()
	st := &specs.ContainerProcessState{Version: specs.Version}
	tests := []struct {
		name    string
		path    string
		fd      int
		st      *specs.ContainerProcessState
		wantErr string
	}{
		{"no agent listening", filepath.Join(dir, "missing.sock"), 0, st, "failed to connect with seccomp agent at " + filepath.Join(dir, "missing.sock")},
		{"negative fd", filepath.Join(dir, "x.sock"), -1, st, "invalid notify fd -1"},
		{"nil state", filepath.Join(dir, "x.sock"), 0, nil, "nil container process state"},
		{"two fd names for one fd", filepath.Join(dir, "x.sock"), 0, &specs.ContainerProcessState{Fds: []string{"a", "b"}}, "exactly one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SendToListener(tc.path, tc.fd, tc.st)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("SendToListener error %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
