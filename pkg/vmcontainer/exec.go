package vmcontainer

import (
	"bytes"
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
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rawtty"
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
		case vmproto.KindConfig, vmproto.KindStdin, vmproto.KindStdinEOF, vmproto.KindSignal, vmproto.KindResize, vmproto.KindProcs:
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
	if kind == vmproto.KindExit || kind == vmproto.KindFail || kind == vmproto.KindProcs {
		nc.Close()
	}
}

// dial connects to the monitor's exec socket of the VM container whose
// state directory is stateDir.
func dial(stateDir string) (net.Conn, error) {
	// The socket's path can be longer than a socket address holds (an
	// engine's 64-character ids): reach it through the directory's fd.
	dir, err := os.Open(filepath.Join(stateDir, Dir, filepath.Dir(ExecSocket)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer dir.Close()
	// The run directory is the container root's: the name could be a
	// symlink to any socket on the host, which connect would follow. So
	// the name is opened without following it, must be a socket, and is
	// connected to through that descriptor.
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(ExecSocket), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, fmt.Errorf("%w: %s in the container's run directory is not a socket (mode %#o)", ErrNotRunning, filepath.Base(ExecSocket), st.Mode)
	}
	nc, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	return nc, nil
}

// Exec runs p in the guest of the VM container whose state directory is
// stateDir, relaying stdio and signals, and returns its status.
//
// With p.Terminal the process gets a pty of the guest (its line
// discipline, echo and job control are the guest kernel's), so a terminal
// on stdin is put in raw mode while its bytes are relayed (internal/rawtty),
// its size is the pty's first size, and SIGWINCH carries later ones.
func Exec(stateDir string, p *specs.Process, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) (int, error) {
	var winsize func() ([]byte, bool)
	if p.Terminal {
		if f, ok := stdin.(*os.File); ok {
			fd := int(f.Fd())
			winsize = terminalSize(fd)
			if p.ConsoleSize == nil {
				if ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err == nil && ws.Row > 0 && ws.Col > 0 {
					p.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
				}
			}
			if old := rawtty.Make(fd); old != nil {
				defer rawtty.Restore(fd, old)
			}
		}
	}
	nc, err := dial(stateDir)
	if err != nil {
		return -1, err
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
	done := make(chan struct{})
	defer close(done)
	var first []byte
	if sz := p.ConsoleSize; sz != nil {
		first = vmproto.Resize(uint16(sz.Height), uint16(sz.Width))
	}
	send := func(kind byte, data []byte) { _ = c.Write(kind, data) }
	go forwardSignals(send, sigs, winsize, first, resizePoll, done)
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
			return -1, fmt.Errorf("vm agent: %s", vmproto.ParseFail(data))
		}
	}
}

// resizePoll is how often the terminal's size is read besides SIGWINCH:
// an engine resizes the pty master it received from --console-socket (an
// exec's, or the container's own from create), and the process holding
// the slave is not always told: the exec relay is not its session's
// leader, and the container's init gets SIGWINCH only while it is the
// terminal's foreground. A person waits this long at most for a new size.
var resizePoll = 200 * time.Millisecond

// terminalSize reads fd's size as a KindResize payload; false while fd is
// not a terminal or has no size yet.
func terminalSize(fd int) func() ([]byte, bool) {
	return func() ([]byte, bool) {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil || ws.Row == 0 || ws.Col == 0 {
			return nil, false
		}
		return vmproto.Resize(ws.Row, ws.Col), true
	}
}

// forwardSignals relays the caller's signals to a process in the guest
// and, when it has a terminal (winsize not nil), each new size of that
// terminal, whether SIGWINCH announced it or the poll found it, until
// done: send gets KindSignal and KindResize frames. It is the one follower
// of a host terminal's size, for an exec'd process (the frames go to its
// session) and for the container's own process (the init's, to the
// payload). first is the size that went with the process (ConsoleSize),
// nil if none.
func forwardSignals(send func(kind byte, data []byte), sigs <-chan os.Signal, winsize func() ([]byte, bool), first []byte, poll time.Duration, done <-chan struct{}) {
	last := first
	var tick <-chan time.Time
	if winsize != nil {
		t := time.NewTicker(poll)
		defer t.Stop()
		tick = t.C
	}
	resize := func() {
		if b, ok := winsize(); ok && !bytes.Equal(b, last) {
			last = b
			send(vmproto.KindResize, b)
		}
	}
	for {
		select {
		case <-done:
			return
		case <-tick:
			resize()
		case s, ok := <-sigs:
			if !ok {
				sigs = nil
				continue
			}
			n, ok := s.(syscall.Signal)
			if ok && n == unix.SIGWINCH && winsize != nil {
				resize()
				continue
			}
			// The runtime's own bookkeeping signals are not the process's.
			if ok && n > 0 && n < 256 && n != unix.SIGCHLD && n != unix.SIGURG && n != unix.SIGPIPE && n != unix.SIGWINCH {
				send(vmproto.KindSignal, []byte{byte(n)})
			}
		}
	}
}

// Procs lists the processes in the guest of the VM container whose state
// directory is stateDir, as its agent reads them from the guest's /proc.
// Their commands come from the guest: SafeCommand before printing them.
func Procs(stateDir string) ([]vmproto.Proc, error) {
	nc, err := dial(stateDir)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	// The agent answers in seconds even under TCG; a guest that does not
	// must not hold ps.
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := vmproto.NewConn(nc, nc)
	if err := c.Write(vmproto.KindProcs, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	kind, data, err := c.Read()
	if err != nil {
		return nil, fmt.Errorf("vm container: no list of the guest's processes: %w", err)
	}
	switch kind {
	case vmproto.KindProcs:
		var ps []vmproto.Proc
		if err := json.Unmarshal(data, &ps); err != nil {
			return nil, fmt.Errorf("vm agent: ps answer: %w", err)
		}
		return ps, nil
	case vmproto.KindFail:
		return nil, fmt.Errorf("vm agent: %s", vmproto.ParseFail(data))
	default:
		return nil, fmt.Errorf("vm agent: ps answered with a frame of kind %q", kind)
	}
}

// SafeCommand makes a string from the guest safe to print on a terminal
// (vmproto.Printable).
func SafeCommand(s string) string { return vmproto.Printable(s) }

// StartRelay is exec --detach for a VM container: the exec'd process runs
// in the guest, so the process an engine waits for (and signals) on the
// host is a relay, `bulwark exec` itself without --detach, carrying the
// caller's stdio (or tty, the slave of OpenConsole, as its stdio) and the
// process (on fd 3) to the agent, and exiting with the process's status.
// Its pid is returned for --pid-file.
func StartRelay(self, root, id string, p *specs.Process, tty *os.File) (int, error) {
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
	if tty != nil {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	}
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
