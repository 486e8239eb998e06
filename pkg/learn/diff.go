package learn

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
)

// maxRegions bounds the argument cases Diff evaluates for one syscall; past
// it (a profile with hundreds of ioctl requests against another with as
// many) the line says the comparison stopped there.
const maxRegions = 1 << 14

// Diff lists what a allows that b does not: a syscall b never allows
// ("+ name"), or the argument values of one that a allows and b refuses
// ("~ name (args...)"). It is exact: every condition either profile puts
// on a syscall's arguments splits each argument's 64-bit range into the
// cases those conditions tell apart; one value of each case that can
// exist is evaluated against both (pkg/seccomp/explain), and each case a
// lets through and b refuses is printed as the conditions that define it.
func Diff(a, b *specs.LinuxSeccomp) []string {
	var out []string
	for _, n := range seccomp.NativeSyscalls() {
		x, y := allowance(a, n), allowance(b, n)
		switch {
		case x == "" || y == "all":
		case y == "" && x == "all":
			out = append(out, "+ "+n)
		case y == "":
			out = append(out, "+ "+n+" "+x)
		default:
			out = append(out, diffArgs(a, b, n)...)
		}
	}
	return out
}

// diffArgs is the "~" lines of syscall n.
func diffArgs(a, b *specs.LinuxSeccomp, n string) []string {
	var preds [6][]pred
	for _, s := range []*specs.LinuxSeccomp{a, b} {
		if s == nil {
			continue
		}
		for _, sc := range s.Syscalls {
			if !slices.Contains(sc.Names, n) {
				continue
			}
			for _, c := range sc.Args {
				if c.Index > 5 {
					continue
				}
				p := pred{op: c.Op, v: c.Value, v2: c.ValueTwo}
				if !slices.Contains(preds[c.Index], p) {
					preds[c.Index] = append(preds[c.Index], p)
				}
			}
		}
	}
	var cls [6][]class
	total := 1
	for i := range preds {
		cls[i] = classes(preds[i])
		total *= max(len(cls[i]), 1)
	}
	var regions []region
	var w [6]uint64
	var pick [6]int
	evaluated := 0
	var walk func(i int) bool
	walk = func(i int) bool {
		if i == 6 {
			if evaluated++; evaluated > maxRegions {
				return false
			}
			if ra := explain.Evaluate(a, n, w); !letsThrough(ra.Action) {
				return true
			}
			if rb := explain.Evaluate(b, n, w); !letsThrough(rb.Action) {
				regions = append(regions, region{pick, rb.Outcome()})
			}
			return true
		}
		if len(cls[i]) == 0 {
			w[i], pick[i] = 0, -1
			return walk(i + 1)
		}
		for k, c := range cls[i] {
			w[i], pick[i] = c.w, k
			if !walk(i + 1) {
				return false
			}
		}
		return true
	}
	complete := walk(0)
	// Regions that differ in one argument only and together take every
	// case of it are one region where that argument does not matter;
	// until nothing merges (a merge on one argument can allow one on
	// another).
	for before := -1; before != len(regions); {
		before = len(regions)
		regions = mergeRegions(regions, cls)
	}
	var out []string
	for _, r := range regions {
		var lits []string
		for j := range 6 {
			if r.pick[j] >= 0 {
				lits = append(lits, cls[j][r.pick[j]].describe(j, preds[j])...)
			}
		}
		what := "whatever the arguments"
		if len(lits) > 0 {
			what = "(" + strings.Join(lits, " && ") + ")"
		}
		out = append(out, fmt.Sprintf("~ %s %s: the other refuses it (%s)", n, what, r.outcome))
	}
	if !complete {
		out = append(out, fmt.Sprintf("~ %s: more than %d argument cases (%d); compared the first %d only", n, maxRegions, total, maxRegions))
	}
	return out
}

// region is a set of argument vectors Diff reports: a case of each
// argument (-1: any value), and what the other profile does there.
type region struct {
	pick    [6]int
	outcome string
}

// mergeRegions merges, for each argument, the regions that differ only in
// it and together take every one of its cases.
func mergeRegions(regions []region, cls [6][]class) []region {
	for j := range 6 {
		if len(cls[j]) == 0 {
			continue
		}
		type key struct {
			pick    [6]int
			outcome string
		}
		count := map[key]int{}
		for _, r := range regions {
			if r.pick[j] < 0 {
				continue
			}
			k := key(r)
			k.pick[j] = -1
			count[k]++
		}
		var merged []region
		done := map[key]bool{}
		for _, r := range regions {
			k := key(r)
			k.pick[j] = -1
			if r.pick[j] < 0 || count[k] < len(cls[j]) {
				merged = append(merged, r)
			} else if !done[k] {
				done[k] = true
				merged = append(merged, region(k))
			}
		}
		regions = merged
	}
	return regions
}

// pred is one argument condition of a rule.
type pred struct {
	op    specs.LinuxSeccompOperator
	v, v2 uint64
}

func (p pred) String(i int, holds bool) string {
	if p.op == specs.OpMaskedEqual {
		op := "=="
		if !holds {
			op = "!="
		}
		return fmt.Sprintf("args[%d]&%#x%s%#x", i, p.v, op, p.v2)
	}
	op := p.op
	if !holds {
		op = map[specs.LinuxSeccompOperator]specs.LinuxSeccompOperator{
			specs.OpEqualTo: specs.OpNotEqual, specs.OpNotEqual: specs.OpEqualTo,
			specs.OpLessThan: specs.OpGreaterEqual, specs.OpGreaterEqual: specs.OpLessThan,
			specs.OpLessEqual: specs.OpGreaterThan, specs.OpGreaterThan: specs.OpLessEqual,
		}[op]
	}
	sym := map[specs.LinuxSeccompOperator]string{specs.OpEqualTo: "==", specs.OpNotEqual: "!=", specs.OpLessThan: "<",
		specs.OpLessEqual: "<=", specs.OpGreaterThan: ">", specs.OpGreaterEqual: ">="}[op]
	return fmt.Sprintf("args[%d]%s%#x", i, sym, p.v)
}

// class is one case an argument's conditions tell apart: which of them
// hold, and a value for which exactly those do.
type class struct {
	holds []bool
	w     uint64
}

// describe is the case as conditions on args[i]: an equality that holds
// says it all; otherwise every condition, negated where it fails.
func (c class) describe(i int, preds []pred) []string {
	for k, p := range preds {
		if c.holds[k] && p.op == specs.OpEqualTo {
			return []string{p.String(i, true)}
		}
	}
	var out []string
	for k, p := range preds {
		if vacuous(p) {
			continue // args[i]>=0: says nothing
		}
		out = append(out, p.String(i, c.holds[k]))
	}
	return out
}

// vacuous: the condition holds for every value.
func vacuous(p pred) bool {
	return p.op == specs.OpGreaterEqual && p.v == 0 || p.op == specs.OpLessEqual && p.v == math.MaxUint64
}

// classes lists every combination of preds (true or false each) that some
// 64-bit value satisfies, with such a value: a search over the
// combinations that prunes a prefix as soon as no value satisfies it.
func classes(preds []pred) []class {
	if len(preds) == 0 {
		return nil
	}
	var out []class
	holds := make([]bool, 0, len(preds))
	var walk func()
	walk = func() {
		if len(holds) == len(preds) {
			w, _ := solve(preds, holds)
			out = append(out, class{holds: slices.Clone(holds), w: w})
			return
		}
		for _, h := range []bool{true, false} {
			holds = append(holds, h)
			if _, ok := solve(preds[:len(holds)], holds); ok {
				walk()
			}
			holds = holds[:len(holds)-1]
		}
	}
	walk()
	return out
}

// solve finds a value for which preds[k] holds exactly when holds[k]: the
// conditions become a range, bits that must be set or clear, and values
// of masked bits it must not have, searched bit by bit from the top.
func solve(preds []pred, holds []bool) (uint64, bool) {
	lo, hi := uint64(0), uint64(math.MaxUint64)
	var fixed, val uint64
	type neq struct{ m, v uint64 }
	var neqs []neq
	must := func(m, v uint64) bool { // x&m == v
		if v&^m != 0 || (fixed&m)&(val^v) != 0 {
			return false
		}
		fixed, val = fixed|m, val|v
		return true
	}
	for k, p := range preds {
		op, h := p.op, holds[k]
		switch {
		case op == specs.OpMaskedEqual && h:
			if !must(p.v, p.v2) {
				return 0, false
			}
		case op == specs.OpMaskedEqual:
			if p.v2&^p.v == 0 { // otherwise it never matches: nothing to avoid
				neqs = append(neqs, neq{p.v, p.v2})
			}
		case op == specs.OpEqualTo && h, op == specs.OpNotEqual && !h:
			if !must(math.MaxUint64, p.v) {
				return 0, false
			}
		case op == specs.OpEqualTo, op == specs.OpNotEqual:
			neqs = append(neqs, neq{math.MaxUint64, p.v})
		case op == specs.OpLessThan && h, op == specs.OpGreaterEqual && !h:
			if p.v == 0 {
				return 0, false
			}
			hi = min(hi, p.v-1)
		case op == specs.OpLessEqual && h, op == specs.OpGreaterThan && !h:
			hi = min(hi, p.v)
		case op == specs.OpGreaterThan && h, op == specs.OpLessEqual && !h:
			if p.v == math.MaxUint64 {
				return 0, false
			}
			lo = max(lo, p.v+1)
		case op == specs.OpGreaterEqual && h, op == specs.OpLessThan && !h:
			lo = max(lo, p.v)
		default:
			return 0, false
		}
	}
	if lo > hi || len(neqs) > 64 {
		return 0, false
	}
	// Digit search: at each bit, whether the value is still equal to lo's
	// (hi's) prefix and which masked values it still equals so far.
	type state struct {
		bit              int
		tightLo, tightHi bool
		pending          uint64
	}
	dead := map[state]bool{}
	var x uint64
	var search func(s state) bool
	search = func(s state) bool {
		if s.bit < 0 {
			return s.pending == 0
		}
		if dead[s] {
			return false
		}
		bit := uint64(1) << s.bit
		for _, b := range []uint64{0, bit} {
			if fixed&bit != 0 && b != val&bit {
				continue
			}
			if s.tightLo && b < lo&bit || s.tightHi && b > hi&bit {
				continue
			}
			next := state{bit: s.bit - 1, tightLo: s.tightLo && b == lo&bit, tightHi: s.tightHi && b == hi&bit, pending: s.pending}
			for j, q := range neqs {
				if q.m&bit != 0 && b != q.v&bit {
					next.pending &^= 1 << j
				}
			}
			if search(next) {
				x |= b
				return true
			}
		}
		dead[s] = true
		return false
	}
	all := uint64(0)
	for j := range neqs {
		all |= 1 << j
	}
	if !search(state{bit: 63, tightLo: true, tightHi: true, pending: all}) {
		return 0, false
	}
	return x, true
}

// holdsFor evaluates the condition on x as libseccomp's comparisons do.
func (p pred) holdsFor(x uint64) bool {
	return explain.Match(specs.LinuxSeccompArg{Op: p.op, Value: p.v, ValueTwo: p.v2}, x)
}
