package vmproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, &buf)
	big := bytes.Repeat([]byte("x"), 200<<10)
	if _, err := (Stream{C: c, Kind: KindStdout}).Write(big); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(KindExit, ExitStatus(-3)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		k, d, err := c.Read()
		if err != nil {
			t.Fatal(err)
		}
		if k == KindExit {
			code, err := ParseExit(d)
			if err != nil || code != -3 {
				t.Fatalf("exit %d, %v; want -3", code, err)
			}
			break
		}
		if k != KindStdout || len(d) > 64<<10 {
			t.Fatalf("frame %q of %d bytes", k, len(d))
		}
		got = append(got, d...)
	}
	if !bytes.Equal(got, big) {
		t.Errorf("stdout: %d bytes back, want %d", len(got), len(big))
	}
}

// TestHostileFramesAreRefused: lengths from the guest are bounded before
// anything is allocated, and a cut frame is an error, not a short read.
func TestHostileFramesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
	}{
		{"oversized", binary.BigEndian.AppendUint32([]byte{KindStdout}, MaxFrame+1)},
		{"cut short", append(binary.BigEndian.AppendUint32([]byte{KindStdout}, 10), "abc"...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewConn(bytes.NewReader(tc.frame), nil)
			if _, _, err := c.Read(); !errors.Is(err, ErrFrame) {
				t.Errorf("Read = %v, want ErrFrame", err)
			}
		})
	}
	if _, err := ParseExit([]byte{1, 2}); !errors.Is(err, ErrFrame) {
		t.Errorf("ParseExit of 2 bytes = %v, want ErrFrame", err)
	}
}

func TestSessionFramesRoundTrip(t *testing.T) {
	tests := []struct {
		id   uint32
		kind byte
		data []byte
	}{
		{1, KindConfig, []byte(`{"args":["true"]}`)},
		{0xfffffffe, KindStdout, []byte("x")},
		{7, KindStdinEOF, nil},
	}
	for _, tc := range tests {
		id, kind, data, err := ParseSession(Session(tc.id, tc.kind, tc.data))
		if err != nil || id != tc.id || kind != tc.kind || string(data) != string(tc.data) {
			t.Errorf("Session(%d, %q, %q) came back as %d %q %q %v", tc.id, tc.kind, tc.data, id, kind, data, err)
		}
	}
	if _, _, _, err := ParseSession([]byte{0, 0, 1}); err == nil {
		t.Error("a session frame shorter than its header was accepted")
	}
}

// TestMarks: a boot step's mark round-trips, and a mark whose name could
// drive the person's terminal or is oversized is refused.
func TestMarks(t *testing.T) {
	name, at, err := ParseMark(Mark("rootfs", 1500*time.Millisecond))
	if err != nil || name != "rootfs" || at != 1500*time.Millisecond {
		t.Fatalf("ParseMark(Mark) = %q, %v, %v; want rootfs, 1.5s", name, at, err)
	}
	for _, bad := range [][]byte{
		{1, 2, 3},
		append(make([]byte, 8), "\x1b[2J"...),
		append(make([]byte, 8), bytes.Repeat([]byte("a"), maxMarkName+1)...),
	} {
		if _, _, err := ParseMark(bad); !errors.Is(err, ErrFrame) {
			t.Errorf("ParseMark(%q) = %v, want ErrFrame", bad, err)
		}
	}
}

func TestResizeRoundTrip(t *testing.T) {
	rows, cols, err := ParseResize(Resize(33, 97))
	if err != nil || rows != 33 || cols != 97 {
		t.Errorf("ParseResize(Resize(33, 97)) = %d, %d, %v", rows, cols, err)
	}
	if _, _, err := ParseResize([]byte{1, 2, 3}); !errors.Is(err, ErrFrame) {
		t.Errorf("ParseResize of 3 bytes = %v, want ErrFrame", err)
	}
}
