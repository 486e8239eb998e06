package tailbuf

import "testing"

func TestBufferKeepsTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
		cut    bool
	}{
		{"under the bound", []string{"ab", "cd"}, "abcd", false},
		{"spills over", []string{"abc", "def"}, "cdef", true},
		{"one write past the bound", []string{"x", "0123456789"}, "6789", true},
		{"exactly the bound", []string{"wxyz"}, "wxyz", false},
		{"the bound after something", []string{"a", "wxyz"}, "wxyz", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(4)
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := b.String(); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
			if b.Truncated() != tc.cut {
				t.Errorf("Truncated = %v, want %v", b.Truncated(), tc.cut)
			}
		})
	}
}
