package learn

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
)

func observed(calls map[string][]string) *Observed {
	o := NewObserved()
	for n, v := range calls {
		o.Syscalls[n] = v
	}
	return o
}

func TestBuildAllowsWhatWasSeenAndNoMore(t *testing.T) {
	p, err := Build("default", observed(map[string][]string{
		"read": {}, "write": {}, "socket": {"0x1/0x1"}, "ioctl": {"0x5401"},
	}), nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  [6]uint64
		allow bool
	}{
		{"read", [6]uint64{}, true},
		{"socket", [6]uint64{1, 1}, true},             // AF_UNIX, SOCK_STREAM: seen
		{"socket", [6]uint64{1, 1 | 0x80000}, true},   // SOCK_CLOEXEC does not matter
		{"socket", [6]uint64{10, 1}, false},           // AF_INET6: never seen
		{"socket", [6]uint64{1, 2}, false},            // SOCK_DGRAM: never seen
		{"ioctl", [6]uint64{0, 0x5401}, true},         // TCGETS
		{"ioctl", [6]uint64{0, 0x5412}, false},        // TIOCSTI: refused by default anyway
		{"mkdir", [6]uint64{}, false},                 // never seen
		{"rt_sigreturn", [6]uint64{}, true},           // always: signal return path
		{"clone", [6]uint64{0x10000}, false},          // a thread: never seen (the init's Go runtime needs none)
		{"clone", [6]uint64{0x11}, false},             // fork: never seen
		{"unshare", [6]uint64{0x10000000}, false},     // CLONE_NEWUSER
		{"mount", [6]uint64{}, false},                 // refused by default with EPERM
		{"mmap", [6]uint64{0, 4096, 0x4}, false},      // PROT_EXEC: never seen
		{"mmap", [6]uint64{0, 4096, 0x3}, false},      // never seen
		{"futex", [6]uint64{}, false},                 // never seen
		{"socket", [6]uint64{1, 1, 0, 0, 0, 0}, true}, // again, to be sure of order
	}
	for _, tc := range tests {
		r := explain.Evaluate(p.Seccomp, tc.name, tc.args)
		if got := letsThrough(r.Action); got != tc.allow {
			t.Errorf("%s%v: allowed %v, want %v (%s)", tc.name, tc.args, got, tc.allow, r.Outcome())
		}
	}
	if len(p.SeccompReasons) != len(p.Seccomp.Syscalls) {
		t.Errorf("%d reasons for %d rules", len(p.SeccompReasons), len(p.Seccomp.Syscalls))
	}
	// mount keeps the default's EPERM, not the learned default's ENOSYS.
	if r := explain.Evaluate(p.Seccomp, "mount", [6]uint64{}); r.Errno != 1 {
		t.Errorf("mount: %s, want EPERM as under default", r.Outcome())
	}
}

func TestMergeIsTheUnion(t *testing.T) {
	a := observed(map[string][]string{"read": {}, "socket": {"0x1/0x1"}})
	a.Written = []string{"/tmp/a"}
	b := observed(map[string][]string{"write": {}, "socket": {"0x2/0x1"}})
	b.Written = []string{"/tmp/a", "/var/b"}
	a.Merge(b)
	a.sorted()
	if !slices.Equal(a.Syscalls["socket"], []string{"0x1/0x1", "0x2/0x1"}) || a.Syscalls["write"] == nil {
		t.Errorf("merged syscalls %v", a.Syscalls)
	}
	if !slices.Equal(a.Written, []string{"/tmp/a", "/var/b"}) {
		t.Errorf("merged written %v", a.Written)
	}
}

func TestParseRefusesBadProfilesNamingTheField(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"syntax", "{\n\"bulwarkProfile\": 1,\nx}", "line 3"},
		{"version", `{"bulwarkProfile": 2, "base": "default"}`, "bulwarkProfile: version 2"},
		{"base", `{"bulwarkProfile": 1, "base": "nope"}`, `base: unknown profile "nope"`},
		{"capability", `{"bulwarkProfile": 1, "base": "default", "capabilities": ["CAP_FLY"]}`, "capabilities[0]"},
		{"no seccomp", `{"bulwarkProfile": 1, "base": "default"}`, "seccomp: missing"},
		{"unknown syscall", `{"bulwarkProfile": 1, "base": "default", "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "fro"], "action": "SCMP_ACT_ALLOW"}]}}`,
			`seccomp.syscalls[0].names[1]: unknown syscall "fro"`},
		{"unknown field", `{"bulwarkProfile": 1, "bsae": "default"}`, `unknown field "bsae"`},
		{"observed key", `{"bulwarkProfile": 1, "base": "default", "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}, "observed": {"syscalls": {"socket": ["x"]}}}`,
			"observed.syscalls.socket"},
	}
	for _, tc := range tests {
		_, err := Parse("p.json", []byte(tc.text))
		if err == nil || !errors.Is(err, ErrProfile) || !strings.Contains(err.Error(), "p.json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an ErrProfile naming p.json and %q", tc.name, err, tc.want)
		}
	}
}

func TestDiffNamesWhatOnlyOneAllows(t *testing.T) {
	narrow, err := Build("default", observed(map[string][]string{"read": {}, "socket": {"0x1/0x1"}}), nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	wide, err := Build("default", observed(map[string][]string{"read": {}, "mkdir": {}, "socket": {"0x1/0x1", "0xa/0x1"}}), nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(narrow.Seccomp, wide.Seccomp); len(d) != 0 {
		t.Errorf("narrow allows nothing wide does not, got %v", d)
	}
	d := strings.Join(Diff(wide.Seccomp, narrow.Seccomp), "\n")
	for _, w := range []string{"+ mkdir", "~ socket (args[0]==0xa"} {
		if !strings.Contains(d, w) {
			t.Errorf("diff lacks %q:\n%s", w, d)
		}
	}
}
