package vmproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
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

// TestConfigCarriesNICs: the guest's NICs travel in the config frame as
// they were sent, and a NIC with a field that does not parse is refused
// naming it.
func TestConfigCarriesNICs(t *testing.T) {
	good := NIC{Name: "eth0", MAC: "02:42:ac:11:00:02", MTU: 1500,
		Addrs:  []string{"172.17.0.2/16", "fd00::2/64"},
		Routes: []Route{{Dst: "0.0.0.0/0", Gateway: "172.17.0.1"}, {Dst: "10.0.0.0/8", Src: "172.17.0.2", Metric: 5}}}
	var buf bytes.Buffer
	c := NewConn(&buf, &buf)
	b, err := json.Marshal(&Config{FS: "9p", NICs: []NIC{good}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(KindConfig, b); err != nil {
		t.Fatal(err)
	}
	_, data, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.NICs, []NIC{good}) {
		t.Errorf("NICs after the round trip: %+v, want %+v", got.NICs, []NIC{good})
	}
	if err := good.Check(); err != nil {
		t.Errorf("Check(%+v) = %v", good, err)
	}
	for field, mutate := range map[string]func(n *NIC){
		"name":    func(n *NIC) { n.Name = "../eth0" },
		"long":    func(n *NIC) { n.Name = "a-name-longer-than-15" },
		"mac":     func(n *NIC) { n.MAC = "02:42" },
		"mtu":     func(n *NIC) { n.MTU = 70000 },
		"address": func(n *NIC) { n.Addrs = []string{"172.17.0.2"} },
		"route":   func(n *NIC) { n.Routes = []Route{{Dst: "default"}} },
		"gateway": func(n *NIC) { n.Routes = []Route{{Dst: "0.0.0.0/0", Gateway: "fd00::1"}} },
	} {
		n := good
		mutate(&n)
		if err := n.Check(); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: Check = %v, want ErrFrame", field, err)
		}
	}
}

func TestDNSFrames(t *testing.T) {
	f := DNSFrame{ID: 0xdeadbeef, Server: 2, Transport: DNSTCP, Msg: []byte("0123456789ab")}
	got, err := ParseDNS(DNS(f))
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, f)
	}
	bad := map[string][]byte{
		"header cut":    {0, 0, 0, 1, 0},
		"transport":     DNS(DNSFrame{Transport: 'x'}),
		"65536 bytes":   DNS(DNSFrame{Transport: DNSUDP, Msg: make([]byte, MaxDNSMessage+1)}),
		"transport nul": DNS(DNSFrame{}),
	}
	for name, b := range bad {
		if _, err := ParseDNS(b); !errors.Is(err, ErrFrame) {
			t.Errorf("%s: %v, want ErrFrame", name, err)
		}
	}
	if _, err := ParseDNS(DNS(DNSFrame{Transport: DNSUDP, Msg: make([]byte, MaxDNSMessage)})); err != nil {
		t.Errorf("a 65535-byte message: %v", err)
	}
}

func TestCheckDNS(t *testing.T) {
	tests := []struct {
		servers []string
		ok      bool
	}{
		{nil, true},
		{[]string{"127.0.0.11"}, true},
		{[]string{"127.0.0.53", "::1"}, true},
		{[]string{"10.0.0.1"}, false},
		{[]string{"::1%lo"}, false},
		{[]string{"localhost"}, false},
		{[]string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}, false},
	}
	for _, tc := range tests {
		if err := CheckDNS(tc.servers); (err == nil) != tc.ok {
			t.Errorf("CheckDNS(%q) = %v, want ok=%v", tc.servers, err, tc.ok)
		}
	}
}

// FuzzGuestFrames feeds the host's side of the port what a guest that owns
// its kernel could write: every frame is bounded before it is allocated,
// and every parser of a guest frame returns an error or a value without
// panicking; a failure message comes out printable and bounded.
func FuzzGuestFrames(f *testing.F) {
	var seed bytes.Buffer
	w := NewConn(nil, &seed)
	_ = w.Write(KindReady, nil)
	_ = w.Write(KindMark, Mark("main", time.Second))
	_ = w.Write(KindSession, Session(7, KindStdout, []byte("hi")))
	_ = w.Write(KindFail, []byte("\x1b]0;x\x07\xff"))
	_ = w.Write(KindExit, ExitStatus(3))
	f.Add(seed.Bytes())
	f.Add([]byte{KindStdout, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewConn(bytes.NewReader(b), nil)
		for {
			kind, data, err := c.Read()
			if err != nil {
				return
			}
			if len(data) > MaxFrame {
				t.Fatalf("a frame of %d bytes was read", len(data))
			}
			switch kind {
			case KindSession:
				_, _, _, _ = ParseSession(data)
			case KindMark:
				if name, _, err := ParseMark(data); err == nil && Printable(name) != name {
					t.Fatalf("mark name %q passed with bytes that are not printable", name)
				}
			case KindExit:
				_, _ = ParseExit(data)
			case KindResize:
				_, _, _ = ParseResize(data)
			case KindDNS:
				if d, err := ParseDNS(data); err == nil && len(d.Msg) > MaxDNSMessage {
					t.Fatalf("a DNS message of %d bytes passed", len(d.Msg))
				}
			case KindProcs:
				var ps []Proc
				_ = json.Unmarshal(data, &ps)
			case KindFail:
				msg := ParseFail(data)
				if len(msg) > 4*maxFail+64 {
					t.Fatalf("failure message of %d bytes", len(msg))
				}
				for _, r := range msg {
					if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
						t.Fatalf("failure message %q keeps control character %U", msg, r)
					}
				}
			}
		}
	})
}
