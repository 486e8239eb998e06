package cleanup

import (
	"slices"
	"testing"
)

func TestStack(t *testing.T) {
	tests := []struct {
		name    string
		steps   int
		release bool
		want    []int
	}{
		{name: "empty", steps: 0, want: nil},
		{name: "undone last first", steps: 3, want: []int{2, 1, 0}},
		{name: "released undoes nothing", steps: 3, release: true, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			var s Stack
			for i := 0; i < tc.steps; i++ {
				s.Add(func() { got = append(got, i) })
			}
			if tc.release {
				s.Release()
			}
			s.Clean()
			s.Clean() // a second Clean must not undo again
			if !slices.Equal(got, tc.want) {
				t.Errorf("undone %v, want %v", got, tc.want)
			}
		})
	}
}
