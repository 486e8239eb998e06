package initproto

import (
	"encoding/binary"
	"errors"
	"fmt"
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
		{"declared size larger than the data", frame(1000, "\x07\x02"), false},
		{"empty body", frame(0, ""), false},
		{"unknown kind", frame(1, "\x00"), false},
		{"kind past the last", frame(1, "\x7b"), false},
		{"fields on a kind without any", frame(2, "\x04\x00"), false},
		{"ready without its pid", frame(1, "\x07"), false},
		{"error with a string longer than the frame", frame(3, "\x08\x10a"), false},
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
	msgs := []Message{Cgroup{}, Hooks{}, Resume{}, Console{}, Seccomp{}, Ready{Pid: 42}, Error{Msg: "boom"}, Namespaces{}, IdmapSource{Mount: 3}, IdmapTree{}, FuseOverlay{Reason: "EPERM"}}
	go func() {
		for _, m := range msgs {
			out.Send(m)
		}
	}()
	for _, want := range msgs {
		m, files, err := c.Recv()
		if err != nil || len(files) != 0 || m != want {
			t.Fatalf("Recv: %#v %v %v, want %#v", m, files, err, want)
		}
	}
}

// A peer that announces the largest allowed frame and then dies must not
// make the runtime allocate that much.
func TestRecvAllocatesWhatArrivesNotWhatIsAnnounced(t *testing.T) {
	c, peer := pair(t)
	feed(peer, frame(maxFrame, "\x08\x7f"))
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
	f.Add(frame(2, "\x07"))
	f.Add(append(frame(2, "\x07\x54"), frame(8, "\x08\x06denied")...))
	f.Add(frame(maxFrame+1, ""))
	f.Add(frame(0xffffffff, "x"))
	f.Add([]byte{0})
	f.Add(frame(1, "\x04"))
	f.Add(frame(3, "\x01\x01\x00"))
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

// The config frame must arrive whole, fds included.
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
	if err := sender.Send(cfg, int(devnull.Fd())); err != nil {
		t.Fatal(err)
	}
	got, files, err := Expect[*InitConfig](c)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		f.Close()
	}
	if len(files) != 1 || !reflect.DeepEqual(got, cfg) {
		t.Fatalf("got %+v with %d fds, want %+v", got, len(files), cfg)
	}
	if err := sender.Send((*InitConfig)(nil)); err == nil {
		t.Fatal("a nil config was sent")
	}
}

func TestRecvRejectsACorruptConfigFrame(t *testing.T) {
	c, peer := pair(t)
	feed(peer, frame(4, "\x01\xff\xff\xff"))
	if _, _, err := c.Recv(); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("got %v, want wire.ErrMalformed", err)
	}
}

func TestExpect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		send    Message
		wantErr string
	}{
		{"the expected kind", Resume{}, ""},
		{"an error frame is the error", Error{Msg: "mount /proc: denied"}, "mount /proc: denied"},
		{"another kind", Ready{Pid: 1}, "sync socket: expected resume, got ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := pair(t)
			go NewConn(peer).Send(tc.send)
			_, _, err := Expect[Resume](c)
			if got := fmt.Sprint(err); (err == nil) != (tc.wantErr == "") || (err != nil && got != tc.wantErr) {
				t.Fatalf("Expect[Resume] after %s: %v, want %q", Name(tc.send), err, tc.wantErr)
			}
		})
	}
}
