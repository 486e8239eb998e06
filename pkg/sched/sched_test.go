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
