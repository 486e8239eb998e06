package main

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.25, 2}, {0.5, 3}, {0.75, 4}, {1, 5}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	// Even count: the median interpolates between the middle pair.
	if got := median([]float64{1, 2, 3, 10}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
	if got := median(nil); got != 0 {
		t.Errorf("median(nil) = %v", got)
	}
	// The input must stay in the order the samples arrived.
	if xs[0] != 5 {
		t.Errorf("quantile sorted its input")
	}
}

func TestParseSpin(t *testing.T) {
	v, ok := parseSpin("getppid 10000000 142.07\n")
	if !ok || math.Abs(v-142.07) > 1e-9 {
		t.Errorf("parseSpin = %v, %v", v, ok)
	}
	for _, bad := range []string{"", "usage: spin getppid N", "getppid 10 x"} {
		if _, ok := parseSpin(bad); ok {
			t.Errorf("parseSpin(%q) accepted", bad)
		}
	}
}

func TestBusy(t *testing.T) {
	if busy("0.00 0.01 0.05") {
		t.Error("idle host reported busy")
	}
	if !busy("99.5 3 3") {
		t.Error("loaded host not reported busy")
	}
	if busy("?") {
		t.Error("unknown load reported busy")
	}
}
