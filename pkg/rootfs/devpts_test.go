package rootfs

import (
	"slices"
	"testing"
)

func TestDevptsMax(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{name: "added", in: []string{"newinstance", "ptmxmode=0666"}, want: []string{"newinstance", "ptmxmode=0666", "max=256"}},
		{name: "a smaller max is kept", in: []string{"max=16", "gid=5"}, want: []string{"max=16", "gid=5"}},
		{name: "a larger max is lowered", in: []string{"max=100000", "gid=5"}, want: []string{"gid=5", "max=256"}},
		{name: "a malformed max is replaced", in: []string{"max=lots"}, want: []string{"max=256"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := devptsMax(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("devptsMax(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
