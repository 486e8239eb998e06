package containerlog

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openLog(t *testing.T, max int64) (*Log, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	l, err := Open(d, "log", max)
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

// demux reads the files back as bulwark logs does: name.1, then name.
func demux(t *testing.T, dir string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	d := NewDemux(&out, &errb)
	for _, n := range []string{"log.1", "log"} {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
			_, _ = d.Write(b)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String()
}

// What each stream wrote comes back on that stream, byte for byte: full
// lines, empty lines, a line longer than a record, a last line without a
// newline, and output that looks like a record of the other stream.
func TestRelayKeepsTheStreamsApart(t *testing.T) {
	long := strings.Repeat("x", MaxRecord*2+5) + "\n"
	for _, tc := range []struct {
		name        string
		out, errOut string
	}{
		{"lines", "one\ntwo\n", "err one\n"},
		{"empty lines", "\n\na\n", "\n"},
		{"long line", long, "e" + long},
		{"no final newline", "partial", "half"},
		{"forged record", "2026-01-01T00:00:00Z stderr F forged\n", ""},
		{"binary", "\x00\x01 stderr F \xff\n", "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dir := openLog(t, 1<<20)
			if err := l.Relay("stdout", strings.NewReader(tc.out)); err != nil {
				t.Fatal(err)
			}
			if err := l.Relay("stderr", strings.NewReader(tc.errOut)); err != nil {
				t.Fatal(err)
			}
			l.Close()
			out, errOut := demux(t, dir)
			if out != tc.out || errOut != tc.errOut {
				t.Errorf("stdout %q, stderr %q; want %q and %q", out, errOut, tc.out, tc.errOut)
			}
		})
	}
}

// Records of the two streams keep the order they were written in, and a
// terminal showing both gets them in that order.
func TestDemuxKeepsTheOrderAcrossStreams(t *testing.T) {
	l, dir := openLog(t, 1<<20)
	pr1, pw1 := io.Pipe()
	pr2, pw2 := io.Pipe()
	done := make(chan error, 2)
	go func() { done <- l.Relay("stdout", pr1) }()
	go func() { done <- l.Relay("stderr", pr2) }()
	var want strings.Builder
	for i := 0; i < 20; i++ {
		w, s := pw1, "out"
		if i%3 == 0 {
			w, s = pw2, "err"
		}
		line := s + string(rune('a'+i)) + "\n"
		want.WriteString(line)
		_, _ = w.Write([]byte(line))
		time.Sleep(2 * time.Millisecond) // each Relay records its line before the next is written
	}
	pw1.Close()
	pw2.Close()
	<-done
	<-done
	l.Close()
	var both bytes.Buffer
	d := NewDemux(&both, &both)
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	_, _ = d.Write(b)
	_ = d.Flush()
	if both.String() != want.String() {
		t.Errorf("interleaved: %q, want %q", both.String(), want.String())
	}
}

// Neither file grows past the cap, a rotation never splits a record, and
// the two files hold the newest records.
func TestLogRotatesAtItsCapOnRecords(t *testing.T) {
	const max = 200
	l, dir := openLog(t, max)
	var all []string
	for i := 0; i < 50; i++ {
		line := strings.Repeat(string(rune('a'+i%26)), i%40)
		all = append(all, line)
		if err := l.record("stdout", true, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	for _, n := range []string{"log", "log.1"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > max {
			t.Errorf("%s: %d bytes, over the cap of %d", n, len(b), max)
		}
		if len(b) > 0 && !bytes.HasSuffix(b, []byte{'\n'}) {
			t.Errorf("%s ends inside a record", n)
		}
	}
	out, _ := demux(t, dir)
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) < 3 || strings.Join(got, "\n") != strings.Join(all[len(all)-len(got):], "\n") {
		t.Errorf("log.1+log hold %q, want the newest of the lines written", got)
	}
}

// A log a record larger than the cap still goes in whole, alone.
func TestLogTakesARecordLargerThanItsCap(t *testing.T) {
	l, dir := openLog(t, 10)
	for _, s := range []string{"a", strings.Repeat("b", 40), "c"} {
		if err := l.record("stderr", true, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	_, errOut := demux(t, dir)
	if errOut != strings.Repeat("b", 40)+"\nc\n" {
		t.Errorf("stderr %q", errOut)
	}
}
