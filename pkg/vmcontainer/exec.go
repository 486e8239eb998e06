package vmcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// ErrNotRunning: exec found no VM to talk to.
var ErrNotRunning = errors.New("the container's VM is not running")

// execServer is the monitor's side of exec: each client on the socket is
// one process exec'd into the guest, its frames relayed to and from the
// agent under a session id of its own.
type execServer struct {
	in      chan []byte
	mu      sync.Mutex
	next    uint32
	clients map[uint32]*vmproto.Conn
	conns   map[uint32]net.Conn
}

func newExecServer() *execServer {
	return &execServer{in: make(chan []byte), clients: map[uint32]*vmproto.Conn{}, conns: map[uint32]net.Conn{}}
}

func (e *execServer) serve(l net.Listener) {
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		go e.client(nc)
	}
}

func (e *execServer) client(nc net.Conn) {
	c := vmproto.NewConn(nc, nc)
	e.mu.Lock()
	e.next++
	id := e.next
	e.clients[id], e.conns[id] = c, nc
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.clients, id)
		delete(e.conns, id)
		e.mu.Unlock()
		nc.Close()
	}()
	for {
		kind, data, err := c.Read()
		if err != nil {
			// The exec client is gone: so is its process (as when
			// runc's exec is killed, its process would lose its stdio).
			e.in <- vmproto.Session(id, vmproto.KindSignal, []byte{byte(unix.SIGKILL)})
			return
		}
		switch kind {
		case vmproto.KindConfig, vmproto.KindStdin, vmproto.KindStdinEOF, vmproto.KindSignal:
			e.in <- vmproto.Session(id, kind, data)
		}
	}
}

// out passes one of the agent's session frames to its client; the status
// (or a failure) ends the session.
func (e *execServer) out(data []byte) {
	id, kind, d, err := vmproto.ParseSession(data)
	if err != nil {
		return
	}
	e.mu.Lock()
	c, nc := e.clients[id], e.conns[id]
	e.mu.Unlock()
	if c == nil {
		return
	}
	_ = c.Write(kind, d)
	if kind == vmproto.KindExit || kind == vmproto.KindFail {
		nc.Close()
	}
}

// Exec runs p in the guest of the VM container whose state directory is
// stateDir, relaying stdio and signals, and returns its status.
func Exec(stateDir string, p *specs.Process, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) (int, error) {
	if p.Terminal {
		return -1, errors.New("exec --tty into a VM container: not supported yet")
	}
	// The socket's path can be longer than a socket address holds (an
	// engine's 64-character ids): reach it through the directory's fd.
	dir, err := os.Open(filepath.Join(stateDir, Dir, filepath.Dir(ExecSocket)))
	if err != nil {
		return -1, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer dir.Close()
	nc, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(ExecSocket)))
	if err != nil {
		return -1, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer nc.Close()
	c := vmproto.NewConn(nc, nc)
	b, err := json.Marshal(p)
	if err != nil {
		return -1, err
	}
	if err := c.Write(vmproto.KindConfig, b); err != nil {
		return -1, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	go func() {
		if stdin != nil {
			_, _ = io.Copy(vmproto.Stream{C: c, Kind: vmproto.KindStdin}, stdin)
		}
		_ = c.Write(vmproto.KindStdinEOF, nil)
	}()
	go func() {
		for s := range sigs {
			n, ok := s.(syscall.Signal)
			// The runtime's own bookkeeping signals are not the process's.
			if ok && n > 0 && n < 256 && n != unix.SIGCHLD && n != unix.SIGURG && n != unix.SIGPIPE && n != unix.SIGWINCH {
				_ = c.Write(vmproto.KindSignal, []byte{byte(n)})
			}
		}
	}()
	for {
		kind, data, err := c.Read()
		if err != nil {
			return -1, fmt.Errorf("vm container: the VM ended before the exec'd process's status arrived: %w", err)
		}
		switch kind {
		case vmproto.KindStdout:
			if stdout != nil {
				_, _ = stdout.Write(data)
			}
		case vmproto.KindStderr:
			if stderr != nil {
				_, _ = stderr.Write(data)
			}
		case vmproto.KindExit:
			return vmproto.ParseExit(data)
		case vmproto.KindFail:
			return -1, fmt.Errorf("vm agent: %s", data)
		}
	}
}

// StartRelay is exec --detach for a VM container: the exec'd process runs
// in the guest, so the process an engine waits for (and signals) on the
// host is a relay, `bulwark exec` itself without --detach, carrying the
// caller's stdio and the process (on fd 3) to the agent, and exiting with
// the process's status. Its pid is returned for --pid-file.
func StartRelay(self, root, id string, p *specs.Process) (int, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return -1, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer pr.Close()
	cmd := exec.Command(self, "--root", root, "exec", "--process", "/proc/self/fd/3", id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{pr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return -1, fmt.Errorf("exec --detach: starting the relay: %w", err)
	}
	// Written before this process exits (a goroutine could be cut short
	// by the exit); past a pipe's 64 KiB the relay, started, reads it.
	_, werr := pw.Write(b)
	pw.Close()
	if werr != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return -1, fmt.Errorf("exec --detach: handing the process to the relay: %w", werr)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}
