package cpio

import (
	"bytes"
	"strconv"
	"syscall"
	"testing"
)

func TestEntriesAreNewcHeadersPaddedToFourBytes(t *testing.T) {
	var b bytes.Buffer
	c := NewWriter(&b)
	if err := c.Entry("dev/console", syscall.S_IFCHR|0o600, 0, 0, 5, 1, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Entry("init", syscall.S_IFREG|0o755, 1000, 1000, 0, 0, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	// Walk the archive as the kernel does: header, name, pad, data, pad.
	var names []string
	for off := 0; off < len(out); {
		h := out[off : off+110]
		if string(h[:6]) != "070701" {
			t.Fatalf("magic at %d: %q", off, h[:6])
		}
		field := func(i int) int {
			n, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
		size, nameLen := field(6), field(11)
		name := string(out[off+110 : off+110+nameLen-1])
		names = append(names, name)
		if name == "init" && (field(2) != 1000 || string(out[(off+110+nameLen+3)&^3:][:size]) != "hello") {
			t.Errorf("init entry: uid %d, data wrong", field(2))
		}
		if name == "dev/console" && (field(9) != 5 || field(10) != 1) {
			t.Errorf("console rdev %d:%d, want 5:1", field(9), field(10))
		}
		off = (off + 110 + nameLen + 3) &^ 3
		off = (off + size + 3) &^ 3
	}
	if want := []string{"dev/console", "init", "TRAILER!!!"}; len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Errorf("entries %q, want %q", names, want)
	}
}
