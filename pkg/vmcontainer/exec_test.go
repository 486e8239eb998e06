package vmcontainer

import "testing"

// TestSafeCommandDefusesTerminalControls: a guest names its processes, so
// a command line could carry escape sequences for the person's terminal.
func TestSafeCommandDefusesTerminalControls(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sh -c sleep 600", "sh -c sleep 600"},
		{"evil\x1b]0;owned\x07", `evil\x1b]0;owned\x07`},
		{"cr\rnl\n", `cr\x0dnl\x0a`},
		{"c1\u009bcsi", `c1\x9bcsi`},
		{"bad\xffutf8", "bad\ufffdutf8"},
		{"ünïcode", "ünïcode"},
	}
	for _, tc := range tests {
		if got := SafeCommand(tc.in); got != tc.want {
			t.Errorf("SafeCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
