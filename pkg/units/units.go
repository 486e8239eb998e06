// Package units reads the sizes people write on the command line (--memory,
// --tmpfs size=, update --memory-swap), in one place so that every flag
// accepts the same forms.
//
// Threat: two parsers drift, and a limit one command accepts another
// refuses or, worse, reads differently (1.5g as 1 byte, 1gi as 1 gibibyte
// in one and an error in the other); a limit misread is a container less
// confined than its owner believes.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte count: digits with an optional fraction, then an
// optional binary unit k, m, g or t (as Docker and runc read them: 1k is
// 1024), optionally followed by i and b, in any case: 1024, 512k, 1.5g,
// 64MiB, 2GB. The result is not negative; fractions of a byte are dropped.
func ParseSize(s string) (int64, error) {
	num := strings.ToLower(strings.TrimSpace(s))
	num = strings.TrimSuffix(num, "b")
	num = strings.TrimSuffix(num, "i")
	mult := 1.0
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			num = num[:n-1]
		}
	}
	// ParseFloat alone would take "inf", "1e3", "0x10" and "-1".
	digits, dots := 0, 0
	for _, c := range num {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			digits = -1
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if digits <= 0 || dots > 1 || err != nil || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional k, m, g or t (1024, 512k, 1.5g)", s)
	}
	return int64(v * mult), nil
}
