package rlimit

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSet(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		rls     []specs.POSIXRlimit
		wantErr string
	}{
		{"none", nil, ""},
		{"the current limit again", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur.Cur, Hard: cur.Max}}, ""},
		{"an unknown type names its index", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur.Cur, Hard: cur.Max}, {Type: "RLIMIT_BOGUS"}},
			`process.rlimits[1].type: unknown rlimit "RLIMIT_BOGUS"`},
		{"soft above hard is refused by the kernel", []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur.Max, Hard: cur.Max - 1}},
			"process.rlimits[0]: prlimit RLIMIT_NOFILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Set(0, tc.rls)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Set: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
