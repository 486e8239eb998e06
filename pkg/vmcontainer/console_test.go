package vmcontainer

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// receiveConsole plays an engine's side of --console-socket: it returns
// the pty master and the name sent with it.
func receiveConsole(t *testing.T, l *net.UnixListener) (*os.File, string) {
	t.Helper()
	_ = l.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer c.Close()
	buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("recvmsg: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v: want one", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v: want one fd", fds, err)
	}
	return os.NewFile(uintptr(fds[0]), "master"), string(buf[:n])
}

func listenConsole(t *testing.T) (string, *net.UnixListener) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return sock, l
}

// readWithin reads what f has within a bounded time (a pty read blocks).
func readWithin(t *testing.T, f *os.File, want int) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		buf := make([]byte, 64)
		for b.Len() < want {
			n, err := f.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		got <- b.String()
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("read of %d bytes from %s timed out", want, f.Name())
		return ""
	}
}

// TestOpenConsoleSendsTheMasterOfARawPty: the engine gets runc's message
// (the master, the slave's name), the pty starts at the process's size,
// the engine's resize reaches the slave the relay reads, and bytes pass
// both ways untranslated and unechoed (the guest's pty does all of that).
func TestOpenConsoleSendsTheMasterOfARawPty(t *testing.T) {
	sock, l := listenConsole(t)
	type res struct {
		f    *os.File
		name string
	}
	got := make(chan res, 1)
	go func() {
		f, name := receiveConsole(t, l)
		got <- res{f, name}
	}()
	slave, err := OpenConsole(sock, &specs.Box{Height: 30, Width: 100})
	if err != nil {
		t.Fatalf("OpenConsole: %v", err)
	}
	defer slave.Close()
	r := <-got
	master := r.f
	defer master.Close()
	if !strings.HasPrefix(r.name, "/dev/pts/") || r.name != slave.Name() {
		t.Errorf("name sent %q, want the slave's /dev/pts/N (%q)", r.name, slave.Name())
	}
	ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Row != 30 || ws.Col != 100 {
		t.Errorf("first size %+v, %v: want 30x100", ws, err)
	}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	if ws, err := unix.IoctlGetWinsize(int(slave.Fd()), unix.TIOCGWINSZ); err != nil || ws.Row != 40 || ws.Col != 120 {
		t.Errorf("size after the engine's resize %+v, %v: want 40x120", ws, err)
	}
	in := "ls\r\x03\x04x"
	if _, err := master.WriteString(in); err != nil {
		t.Fatal(err)
	}
	if s := readWithin(t, slave, len(in)); s != in {
		t.Errorf("slave read %q, want %q unchanged (raw mode)", s, in)
	}
	out := "a\nb"
	if _, err := slave.WriteString(out); err != nil {
		t.Fatal(err)
	}
	// Nothing echoed ahead of the output, and no \r added.
	if s := readWithin(t, master, len(out)); s != out {
		t.Errorf("master read %q, want %q (no echo, no ONLCR)", s, out)
	}
}

// TestOpenConsoleFailsCleanlyWithoutAListener: a socket nobody listens on
// is an error naming the flag, and no pty is left open.
func TestOpenConsoleFailsCleanlyWithoutAListener(t *testing.T) {
	before := openFds(t)
	_, err := OpenConsole(filepath.Join(t.TempDir(), "absent.sock"), nil)
	if err == nil || !strings.Contains(err.Error(), "--console-socket") {
		t.Fatalf("err %v, want one naming --console-socket", err)
	}
	if after := openFds(t); after != before {
		t.Errorf("open fds %d before, %d after: the pty leaked", before, after)
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestForwardSignalsCarriesTheEnginesResize: an engine resizes the master
// and sends no SIGWINCH to the relay; the poll sends the new size once,
// and signals still pass.
func TestForwardSignalsCarriesTheEnginesResize(t *testing.T) {
	sock, l := listenConsole(t)
	got := make(chan *os.File, 1)
	go func() {
		f, _ := receiveConsole(t, l)
		got <- f
	}()
	slave, err := OpenConsole(sock, &specs.Box{Height: 24, Width: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	master := <-got
	defer master.Close()
	winsize := terminalSize(int(slave.Fd()))
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	_ = b.SetDeadline(time.Now().Add(10 * time.Second))
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	defer close(done)
	conn := vmproto.NewConn(a, a)
	send := func(kind byte, data []byte) { _ = conn.Write(kind, data) }
	go forwardSignals(send, sigs, winsize, vmproto.Resize(24, 80), 10*time.Millisecond, done)
	c := vmproto.NewConn(b, b)

	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
		t.Fatal(err)
	}
	kind, data, err := c.Read()
	if err != nil || kind != vmproto.KindResize {
		t.Fatalf("frame %q %v, want a resize", kind, err)
	}
	if rows, cols, err := vmproto.ParseResize(data); err != nil || rows != 50 || cols != 132 {
		t.Errorf("resize %dx%d %v, want 50x132", rows, cols, err)
	}
	// Several polls see the same size: the next frame is the signal,
	// not the same size again.
	time.Sleep(50 * time.Millisecond)
	sigs <- syscall.SIGUSR1
	kind, data, err = c.Read()
	if err != nil || kind != vmproto.KindSignal || len(data) != 1 || data[0] != byte(syscall.SIGUSR1) {
		t.Errorf("frame %q %v %v, want SIGUSR1", kind, data, err)
	}
}
