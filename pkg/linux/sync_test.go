package linux

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"reflect"
	"runtime"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/wire"
)

// pair returns the two ends of a socketpair like the runtime's sync socket.
func pair(t testing.TB) (*Conn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := NewConn(os.NewFile(uintptr(fds[0]), "recv"))
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { c.Close(); peer.Close() })
	return c, peer
}

// feed writes b from a goroutine (it may exceed the socket buffer) and then
// closes the peer, as a dying init would.
func feed(peer *os.File, b []byte) {
	go func() {
		peer.Write(b)
		peer.Close()
	}()
}

func frame(size uint32, body string) []byte {
	b := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(b, size)
	return append(b, body...)
}

func TestRecvRejectsBadFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		eof  bool // io.EOF: the peer closed cleanly between frames
	}{
		{"empty stream", nil, true},
		{"short header", []byte{0, 0}, false},
		{"oversized frame", frame(maxFrame+1, ""), false},
		{"declared size larger than the data", frame(1000, `{"type":"x"}`), false},
		{"body not JSON", frame(5, "hello"), false},
		{"body of the wrong JSON type", frame(2, "[]"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := pair(t)
			feed(peer, tc.in)
			m, _, err := c.Recv()
			if err == nil {
				t.Fatalf("Recv accepted %q as %+v", tc.in, m)
			}
			if errors.Is(err, io.EOF) != tc.eof {
				t.Fatalf("Recv(%q): %v, want EOF=%v", tc.in, err, tc.eof)
			}
		})
	}
}

func TestRecvReadsWhatSendWrote(t *testing.T) {
	c, peer := pair(t)
	out := NewConn(peer)
	go func() {
		out.Send(&Msg{Type: MsgHooks})
		out.Send(&Msg{Type: MsgError, Error: "boom"})
	}()
	for _, want := range []Msg{{Type: MsgHooks}, {Type: MsgError, Error: "boom"}} {
		m, files, err := c.Recv()
		if err != nil || len(files) != 0 || m.Type != want.Type || m.Error != want.Error {
			t.Fatalf("Recv: %+v %v %v, want %+v", m, files, err, want)
		}
	}
}

// A peer that announces the largest allowed frame and then dies must not
// make the runtime allocate that much.
func TestRecvAllocatesWhatArrivesNotWhatIsAnnounced(t *testing.T) {
	c, peer := pair(t)
	feed(peer, frame(maxFrame, `{"type":`))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := c.Recv()
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("Recv accepted a truncated frame")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > maxFrame/16 {
		t.Fatalf("Recv allocated %d bytes for a frame of 8 bytes announced as %d", d, maxFrame)
	}
}

// FuzzRecv feeds arbitrary bytes to the runtime's end of the sync socket:
// whatever a compromised or crashing init writes, Recv returns frames or
// errors, never panics, and stops at the end of the stream.
func FuzzRecv(f *testing.F) {
	f.Add(frame(15, `{"type":"ready"}`[:15]))
	f.Add(append(frame(16, `{"type":"ready"}`), frame(33, `{"type":"error","error":"denied"}`)...))
	f.Add(frame(maxFrame+1, ""))
	f.Add(frame(0xffffffff, "x"))
	f.Add([]byte{0})
	f.Add(frame(4, "null"))
	f.Add(frame(3, "\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, peer := pair(t)
		feed(peer, data)
		// Every frame consumes at least its 4-byte header.
		for i := 0; i <= len(data)/4+1; i++ {
			m, files, err := c.Recv()
			for _, f := range files {
				f.Close()
			}
			if err != nil {
				return
			}
			if m == nil {
				t.Fatal("Recv returned neither a message nor an error")
			}
		}
		t.Fatalf("Recv returned more frames than %d bytes can hold", len(data))
	})
}

// The config frame is the one frame not in JSON: what the runtime sends must
// arrive whole, fds included, and a JSON frame can never smuggle a config.
func TestConfigFrameRoundTrip(t *testing.T) {
	cfg := &InitConfig{
		ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs", ConsoleFd: -1, FifoFd: 5, NewUserNS: true,
		Spec: &specs.Spec{Version: specs.Version, Hostname: "h", Annotations: map[string]string{"a": "b"},
			Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}, Resources: &specs.LinuxResources{}}},
		Process:        &specs.Process{Args: []string{"sh", "-c", "true"}, Env: []string{}, Capabilities: &specs.LinuxCapabilities{Bounding: []string{}}},
		SeccompProgram: []byte{0, 1, 2, 255},
	}
	c, peer := pair(t)
	sender := NewConn(peer)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	if err := sender.Send(&Msg{Type: MsgConfig, Config: cfg}, int(devnull.Fd())); err != nil {
		t.Fatal(err)
	}
	m, files, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	if m.Type != MsgConfig || len(files) != 1 || !reflect.DeepEqual(m.Config, cfg) {
		t.Fatalf("got %+v with %d fds, want %+v", m.Config, len(files), cfg)
	}

	if err := sender.Send(&Msg{Type: MsgReady, Config: cfg}); err == nil {
		t.Fatal("a config was sent in a ready frame")
	}
	smuggled := `{"type":"config","config":{"id":"x"}}`
	feed(peer, frame(uint32(len(smuggled)), smuggled))
	if m, _, err := c.Recv(); err != nil || m.Config != nil {
		t.Fatalf("JSON config frame: got %+v, %v; want a message without config", m, err)
	}
}

func TestRecvRejectsACorruptConfigFrame(t *testing.T) {
	c, peer := pair(t)
	feed(peer, frame(4, "\x01\xff\xff\xff"))
	if _, _, err := c.Recv(); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("got %v, want wire.ErrMalformed", err)
	}
}
