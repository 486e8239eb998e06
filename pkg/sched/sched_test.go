package sched

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr string
	}{
		{in: "", want: nil},
		{in: "0", want: []int{0}},
		{in: "0-2,5", want: []int{0, 1, 2, 5}},
		{in: " 1 , 3-3 ", want: []int{1, 3}},
		{in: "3-1", wantErr: "runs backwards"},
		{in: "a", wantErr: "not a CPU or node number"},
		{in: "-1", wantErr: "not a CPU or node number"},
		{in: "0,", wantErr: "not a CPU or node number"},
		{in: "9000", wantErr: "above the largest"},
	} {
		set, err := ParseList(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseList(%q) = %v, want error %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseList(%q): %v", tc.in, err)
			continue
		}
		if set.Count() != len(tc.want) {
			t.Errorf("ParseList(%q) has %d CPUs, want %v", tc.in, set.Count(), tc.want)
		}
		for _, c := range tc.want {
			if !set.IsSet(c) {
				t.Errorf("ParseList(%q) lacks %d", tc.in, c)
			}
		}
	}
}

func TestAttr(t *testing.T) {
	a, err := Attr(&specs.Scheduler{Policy: specs.SchedBatch, Nice: 7, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Policy != 3 || a.Nice != 7 || a.Flags != 1 {
		t.Errorf("Attr = %+v, want policy 3 (SCHED_BATCH), nice 7, flags 1", a)
	}
	if _, err := Attr(&specs.Scheduler{Policy: "SCHED_X"}); err == nil {
		t.Error("Attr accepted an unknown policy")
	}
}

func TestMemoryPolicy(t *testing.T) {
	mode, nodes, _, err := MemoryPolicy(&specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes}})
	if err != nil {
		t.Fatal(err)
	}
	if mode != 2|1<<15 || !nodes.IsSet(0) || nodes.Count() != 1 {
		t.Errorf("MemoryPolicy = %#x %v, want MPOL_BIND|MPOL_F_STATIC_NODES on node 0", mode, nodes)
	}
	if got := MemoryPolicyModes(); len(got) != 7 || got[0] != "MPOL_BIND" {
		t.Errorf("MemoryPolicyModes = %v", got)
	}
}

// TestMemoryPolicyErrorsCarryRuncsWords: each refusal names its subfield
// and holds the phrase runc prints for it, which scripts and runc's own
// suite (memorypolicy.bats) match.
func TestMemoryPolicyErrorsCarryRuncsWords(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mp          specs.LinuxMemoryPolicy
		field, want string
	}{
		{"empty policy", specs.LinuxMemoryPolicy{}, "mode", `invalid memory policy mode "" (known: MPOL_BIND`},
		{"missing mode", specs.LinuxMemoryPolicy{Nodes: "0-7"}, "mode", "invalid memory policy mode"},
		{"unknown mode", specs.LinuxMemoryPolicy{Mode: "INTERLEAVE", Nodes: "0"}, "mode", `invalid memory policy mode "INTERLEAVE"`},
		{"unknown flag", specs.LinuxMemoryPolicy{Mode: specs.MpolPreferred, Nodes: "0", Flags: []specs.MemoryPolicyFlagType{specs.MpolFRelativeNodes, "badflag"}}, "flags[1]", `invalid memory policy flag "badflag"`},
		{"nodes for a mode that takes none", specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0-7"}, "nodes", "MPOL_DEFAULT takes no nodes: mode requires 0 nodes but got 8"},
		{"a node number too large", specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0-9876543210"}, "nodes", "invalid memory policy node: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, field, err := MemoryPolicy(&tc.mp)
			if err == nil || field != tc.field || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("MemoryPolicy(%+v) = field %q, %v; want field %q and %q", tc.mp, field, err, tc.field, tc.want)
			}
		})
	}
}
