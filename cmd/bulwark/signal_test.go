package main

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSignalAcceptsRuncForms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"9", unix.SIGKILL, true}, {"KILL", unix.SIGKILL, true}, {"SIGKILL", unix.SIGKILL, true},
		{"kill", unix.SIGKILL, true}, {"sigterm", unix.SIGTERM, true}, {"64", unix.Signal(64), true},
		{"0", 0, true}, {"00", 0, false}, {"-9", 0, false}, {"65", 0, false}, {"", 0, false}, {"SIG", 0, false},
		{"FOO", 0, false}, {"99999999999999999999", 0, false}, {"SIGKILL\x00", 0, false},
	} {
		got, err := parseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "signal") {
			t.Errorf("parseSignal(%q): error does not say what was wrong: %v", tc.in, err)
		}
	}
}

// FuzzParseSignal: whatever `bulwark kill ID X` gets as X, the result is
// an error or a real signal number, never one past the kernel's last, and
// 0 (kill(2)'s liveness probe, runc's `kill ID 0`) only for exactly "0".
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"9", "KILL", "sigkill", "SIGRTMIN+3", "0", "-1", "65", "", "SIG"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseSignal(s)
		if err != nil {
			return
		}
		if s == "0" && sig == 0 {
			return
		}
		if sig < 1 || sig > 64 {
			t.Fatalf("parseSignal(%q) = %d", s, sig)
		}
	})
}
