package userface

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The log never holds more than twice its cap, and keeps the newest bytes.
func TestCapLogRotatesAtItsCap(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	l, err := openCapLog(d, "log", 10)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, w := range []string{"0123", "456789abcdef", "ghijklmnopqrstuvwxyz", "!"} {
		if n, err := l.Write([]byte(w)); err != nil || n != len(w) {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
		all = append(all, w...)
	}
	l.Close()
	cur, _ := os.ReadFile(filepath.Join(dir, "log"))
	old, _ := os.ReadFile(filepath.Join(dir, "log.1"))
	if len(cur) > 10 || len(old) > 10 {
		t.Errorf("log %d bytes, log.1 %d bytes: over the cap of 10", len(cur), len(old))
	}
	if got := append(old, cur...); !bytes.HasSuffix(all, got) || len(got) < 10 {
		t.Errorf("log.1+log = %q, want the newest bytes of %q", got, all)
	}
}
