package learn

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestDiffIsExactOnArguments(t *testing.T) {
	build := func(calls map[string][]string) *specs.LinuxSeccomp {
		p, err := Build("default", observed(calls), nil, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return p.Seccomp
	}
	only := func(name string, args ...specs.LinuxSeccompArg) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{name}, Action: specs.ActAllow, Args: args}}}
	}
	arg := func(i uint, op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccompArg {
		return specs.LinuxSeccompArg{Index: i, Op: op, Value: v, ValueTwo: v2}
	}
	def, err := BaseSeccomp("default")
	if err != nil {
		t.Fatal(err)
	}
	unix := build(map[string][]string{"read": {}, "socket": {"0x1/0x1"}})
	unix6 := build(map[string][]string{"read": {}, "mkdir": {}, "socket": {"0x1/0x1", "0xa/0x1"}})
	const enosys = ": the other refuses it (fails with ENOSYS (as if the kernel did not have it))"
	for _, tc := range []struct {
		name string
		a, b *specs.LinuxSeccomp
		// want: exactly these lines; has: at least these (a and b are
		// whole profiles); lacks: none of these.
		want, has, lacks []string
	}{
		{name: "the same profile", a: unix, b: unix, want: []string{}},
		{name: "narrower than the other", a: unix, b: unix6, want: []string{}},
		{name: "one more family and one more call", a: unix6, b: unix,
			want: []string{"~ socket (args[0]==0xa && args[1]&0xf==0x1)" + enosys, "+ mkdir"}},
		{name: "the default against a learned AF_UNIX stream socket", a: def, b: unix,
			has: []string{
				"~ socket (args[0]==0x2)" + enosys,                     // AF_INET: any type
				"~ socket (args[0]==0xa)" + enosys,                     // AF_INET6
				"~ socket (args[0]==0x1 && args[1]&0xf!=0x1)" + enosys, // AF_UNIX, not a stream
			},
			lacks: []string{
				"~ socket (args[0]==0x1 && args[1]&0xf==0x1)", // both allow it
			}},
		{name: "a range against one value of it", a: only("personality", arg(0, specs.OpLessEqual, 8, 0)), b: only("personality", arg(0, specs.OpEqualTo, 0, 0)),
			want: []string{"~ personality (args[0]<=0x8 && args[0]!=0x0): the other refuses it (denied with EPERM)"}},
		{name: "one value against a range holding it", a: only("personality", arg(0, specs.OpEqualTo, 0, 0)), b: only("personality", arg(0, specs.OpLessEqual, 8, 0)),
			want: []string{}},
		{name: "disjoint ranges", a: only("personality", arg(0, specs.OpGreaterThan, 0x10, 0)), b: only("personality", arg(0, specs.OpLessThan, 0x20, 0)),
			want: []string{"~ personality (args[0]>0x10 && args[0]>=0x20): the other refuses it (denied with EPERM)"}},
		{name: "every value against flags masked out", a: only("clone"), b: only("clone", arg(0, specs.OpMaskedEqual, 0x7e020000, 0)),
			want: []string{"~ clone (args[0]&0x7e020000!=0x0): the other refuses it (denied with EPERM)"}},
		{name: "two arguments, one differs", a: only("mmap", arg(2, specs.OpMaskedEqual, 4, 0), arg(3, specs.OpEqualTo, 0x22, 0)),
			b:    only("mmap", arg(2, specs.OpMaskedEqual, 4, 0), arg(3, specs.OpEqualTo, 0x2, 0)),
			want: []string{"~ mmap (args[2]&0x4==0x0 && args[3]==0x22): the other refuses it (denied with EPERM)"}},
		{name: "a masked value the mask cannot give never matches", a: only("clone", arg(0, specs.OpMaskedEqual, 0xf, 0x10)), b: only("clone"),
			want: []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff(tc.a, tc.b)
			if tc.want != nil && !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			for _, h := range tc.has {
				if !slices.Contains(got, h) {
					t.Errorf("lacks %q in\n  %s", h, strings.Join(got, "\n  "))
				}
			}
			for _, l := range tc.lacks {
				for _, g := range got {
					if strings.HasPrefix(g, l) {
						t.Errorf("has %q", g)
					}
				}
			}
		})
	}
}

func TestSolveFindsAValueExactlyWhenOneExists(t *testing.T) {
	p := func(op specs.LinuxSeccompOperator, v, v2 uint64) pred { return pred{op: op, v: v, v2: v2} }
	for _, tc := range []struct {
		name  string
		preds []pred
		holds []bool
		ok    bool
	}{
		{"equal and not equal to the same", []pred{p(specs.OpEqualTo, 5, 0), p(specs.OpNotEqual, 5, 0)}, []bool{true, true}, false},
		{"below 1 and not 0", []pred{p(specs.OpLessThan, 1, 0), p(specs.OpEqualTo, 0, 0)}, []bool{true, false}, false},
		{"every value of a 2-bit mask excluded", []pred{p(specs.OpMaskedEqual, 3, 0), p(specs.OpMaskedEqual, 3, 1), p(specs.OpMaskedEqual, 3, 2), p(specs.OpMaskedEqual, 3, 3)}, []bool{false, false, false, false}, false},
		{"three of four values of a 2-bit mask excluded", []pred{p(specs.OpMaskedEqual, 3, 0), p(specs.OpMaskedEqual, 3, 1), p(specs.OpMaskedEqual, 3, 2)}, []bool{false, false, false}, true},
		{"a range of one value, excluded", []pred{p(specs.OpGreaterEqual, 7, 0), p(specs.OpLessEqual, 7, 0), p(specs.OpNotEqual, 7, 0)}, []bool{true, true, false}, true},
		{"a range of one value, excluded (as !=)", []pred{p(specs.OpGreaterEqual, 7, 0), p(specs.OpLessEqual, 7, 0), p(specs.OpEqualTo, 7, 0)}, []bool{true, true, false}, false},
		{"a set bit above the range", []pred{p(specs.OpLessThan, 0x100, 0), p(specs.OpMaskedEqual, 0x100, 0x100)}, []bool{true, true}, false},
		{"above the largest value", []pred{p(specs.OpGreaterThan, ^uint64(0), 0)}, []bool{true}, false},
	} {
		w, ok := solve(tc.preds, tc.holds)
		if ok != tc.ok {
			t.Errorf("%s: solvable %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		for k, q := range tc.preds {
			if q.holdsFor(w) != tc.holds[k] {
				t.Errorf("%s: witness %#x: condition %d holds %v, want %v", tc.name, w, k, !tc.holds[k], tc.holds[k])
			}
		}
	}
}
