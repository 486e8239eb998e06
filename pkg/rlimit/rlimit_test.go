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

// Raise only ever raises hard limits and keeps soft ones; Prepare and
// Apply then set the exact values, extras only where the config names no
// such limit, and a failure names the config's index.
func TestRaiseThenApply(t *testing.T) {
	if unix.Geteuid() != 0 {
		t.Skip("needs root: raises a hard limit")
	}
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &orig) })
	get := func() unix.Rlimit {
		var r unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_MSGQUEUE, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &unix.Rlimit{Cur: 1000, Max: 2000}); err != nil {
		t.Fatal(err)
	}
	// Raising a hard limit needs CAP_SYS_RESOURCE, which some hosts'
	// root lacks; the lowering case comes last, as nothing can undo it.
	canRaise := held(unix.CAP_SYS_RESOURCE)
	for _, tc := range []struct {
		name      string
		soft, hrd uint64
		raised    unix.Rlimit
	}{
		{"a higher hard limit is raised, the soft limit kept", 1500, 6000, unix.Rlimit{Cur: 1000, Max: 6000}},
		{"a lower hard limit lowers nothing", 10, 20, unix.Rlimit{Cur: 1000, Max: 2000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.raised.Max > 2000 && !canRaise {
				t.Skip("needs CAP_SYS_RESOURCE to raise a hard limit")
			}
			if err := unix.Setrlimit(unix.RLIMIT_MSGQUEUE, &unix.Rlimit{Cur: 1000, Max: 2000}); err != nil {
				t.Fatal(err)
			}
			rls := []specs.POSIXRlimit{{Type: "RLIMIT_MSGQUEUE", Soft: tc.soft, Hard: tc.hrd}}
			if err := Raise(0, rls); err != nil {
				t.Fatal(err)
			}
			if got := get(); got != tc.raised {
				t.Fatalf("after Raise: %+v, want %+v", got, tc.raised)
			}
			l, err := Prepare(rls, specs.POSIXRlimit{Type: "RLIMIT_MSGQUEUE", Soft: 1, Hard: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Apply(); err != nil {
				t.Fatal(err)
			}
			if got, want := get(), (unix.Rlimit{Cur: tc.soft, Max: tc.hrd}); got != want {
				t.Fatalf("after Apply: %+v, want the config's %+v (the extra is for limits it does not name)", got, want)
			}
		})
	}
	if _, err := Prepare([]specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}); err == nil || !strings.Contains(err.Error(), "process.rlimits[0].type") {
		t.Errorf("Prepare of an unknown type: %v, want an error naming process.rlimits[0].type", err)
	}
	l, err := Prepare([]specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: 0, Hard: 0}, {Type: "RLIMIT_MSGQUEUE", Soft: 10, Hard: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(); err == nil || !strings.Contains(err.Error(), "process.rlimits[1]: prlimit RLIMIT_MSGQUEUE") {
		t.Errorf("Apply of soft above hard: %v, want an error naming process.rlimits[1]", err)
	}
}

// held reports whether the calling thread has capability c effective.
func held(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
