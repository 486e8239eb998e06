package vm

import (
	"strings"
	"testing"
)

func TestConsoleLinesPrintsWholeEscapedBoundedLines(t *testing.T) {
	long := strings.Repeat("x", maxConsoleLine)
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"one line", []string{"Linux version 6.1\r\n"}, "vm console: Linux version 6.1\n"},
		{"split across writes", []string{"Linux ", "vers", "ion\r\nnext\n"}, "vm console: Linux version\nvm console: next\n"},
		{"unfinished line waits", []string{"no newline yet"}, ""},
		{"control bytes escaped", []string{"\x1b]0;owned\x07title\n"}, "vm console: \\x1b]0;owned\\x07title\n"},
		{"a line that never ends is cut", []string{long, "yy\n"}, "vm console: " + long + "\nvm console: yy\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			c := &consoleLines{out: &out}
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if out.String() != tc.want {
				t.Errorf("printed %q, want %q", out.String(), tc.want)
			}
			if len(c.line) > maxConsoleLine {
				t.Errorf("line buffer grew to %d bytes", len(c.line))
			}
		})
	}
}
