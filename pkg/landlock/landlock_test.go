package landlock

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

func TestModeOf(t *testing.T) {
	tests := []struct {
		ann     map[string]string
		want    string
		wantErr bool
	}{
		{nil, ModeOff, false},
		{map[string]string{oci.AnnotationLandlock: ""}, ModeOff, false},
		{map[string]string{oci.AnnotationLandlock: "off"}, ModeOff, false},
		{map[string]string{oci.AnnotationLandlock: "enforce"}, ModeEnforce, false},
		{map[string]string{oci.AnnotationLandlock: "require"}, ModeRequire, false},
		{map[string]string{oci.AnnotationLandlock: "Enforce"}, "", true},
		{map[string]string{oci.AnnotationLandlock: "on"}, "", true},
		{map[string]string{"other": "enforce"}, ModeOff, false},
	}
	for _, tc := range tests {
		got, err := ModeOf(tc.ann)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ModeOf(%v) = %q, %v; want %q, error %v", tc.ann, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), oci.AnnotationLandlock) {
			t.Errorf("error %q does not name the annotation", err)
		}
	}
}

func TestRulesFromMounts(t *testing.T) {
	d := t.TempDir()
	file := filepath.Join(d, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(d, "gone")
	tests := []struct {
		name   string
		mounts []*mountinfo.Info
		want   []Rule
	}{
		{"rw dir", []*mountinfo.Info{{Mountpoint: d, Options: "rw,nosuid"}}, []Rule{{Path: d, Writable: true, Dir: true}}},
		{"ro dir", []*mountinfo.Info{{Mountpoint: d, Options: "ro,nosuid"}}, []Rule{{Path: d, Dir: true}}},
		{"ro superblock", []*mountinfo.Info{{Mountpoint: d, Options: "rw", VFSOptions: "ro"}}, []Rule{{Path: d, Dir: true}}},
		{"ro file", []*mountinfo.Info{{Mountpoint: file, Options: "ro"}}, []Rule{{Path: file}}},
		{"rw file", []*mountinfo.Info{{Mountpoint: file, Options: "rw"}}, []Rule{{Path: file, Writable: true}}},
		{"hidden mountpoint skipped", []*mountinfo.Info{{Mountpoint: gone, Options: "rw"}}, nil},
		{"topmost of a stacked path wins", []*mountinfo.Info{
			{Mountpoint: d, Options: "rw"}, {Mountpoint: file, Options: "rw"}, {Mountpoint: d, Options: "ro"},
		}, []Rule{{Path: d, Dir: true}, {Path: file, Writable: true}}},
		{"option names are matched whole", []*mountinfo.Info{{Mountpoint: d, Options: "rw,errors=remount-ro"}}, []Rule{{Path: d, Writable: true, Dir: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RulesFromMounts(tc.mounts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("rule %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPrepareOff(t *testing.T) {
	for _, mode := range []string{"", ModeOff} {
		rs, err := Prepare(mode)
		if rs != nil || err != nil {
			t.Errorf("Prepare(%q) = %v, %v; want nothing", mode, rs, err)
		}
	}
	if _, err := Prepare("bogus"); err == nil {
		t.Error("Prepare(bogus) accepted an unknown mode")
	}
}

// TestPrepareCoversEveryVisibleMount builds (without enforcing) a ruleset
// from this process's mount table: every mountpoint that resolves gets a
// rule, so nothing the container legitimately owns is left out.
func TestPrepareCoversEveryVisibleMount(t *testing.T) {
	if ABI() == 0 {
		t.Skip("kernel has no Landlock")
	}
	rs, err := Prepare(ModeEnforce)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if rs.ABI() != ABI() {
		t.Errorf("ruleset ABI %d, want %d", rs.ABI(), ABI())
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, r := range rs.Rules {
		have[r.Path] = true
	}
	for _, m := range mounts {
		if _, err := os.Stat(m.Mountpoint); err == nil && !have[m.Mountpoint] {
			t.Errorf("mountpoint %s has no rule", m.Mountpoint)
		}
	}
}

func TestNarrow(t *testing.T) {
	d := t.TempDir()
	app := filepath.Join(d, "app")
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(d, "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	rules := []Rule{
		{Path: d, Writable: true, Dir: true},
		{Path: ro, Dir: true},
		{Path: "/dev", Writable: true, Dir: true},
		{Path: "/dev/pts", Writable: true, Dir: true},
		{Path: filepath.Join(d, "file"), Writable: true},
	}
	tests := []struct {
		name     string
		writable []string
		want     []Rule
	}{
		{"nothing writable but /dev and single files", []string{}, []Rule{
			{Path: d, Dir: true}, {Path: ro, Dir: true}, {Path: "/dev", Writable: true, Dir: true},
			{Path: "/dev/pts", Writable: true, Dir: true}, {Path: filepath.Join(d, "file"), Writable: true},
		}},
		{"an existing directory", []string{app}, nil},
		{"a directory yet to be made: its nearest existing ancestor", []string{filepath.Join(app, "new/deeper")}, nil},
		{"under a read-only mount: dropped", []string{filepath.Join(ro, "x")}, nil},
	}
	base := tests[0].want
	tests[1].want = append(slices.Clone(base), Rule{Path: app, Writable: true, Dir: true})
	tests[2].want = append(slices.Clone(base), Rule{Path: app, Writable: true, Dir: true})
	tests[3].want = slices.Clone(base)
	for _, tc := range tests {
		got := Narrow(slices.Clone(rules), tc.writable)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestWritableOf(t *testing.T) {
	tests := []struct {
		v       *string
		want    []string
		wantErr bool
	}{
		{nil, nil, false},
		{ptr(""), []string{}, false},
		{ptr("/tmp,/var/lib"), []string{"/tmp", "/var/lib"}, false},
		{ptr("tmp"), nil, true},
		{ptr("/tmp/../etc"), nil, true},
	}
	for _, tc := range tests {
		ann := map[string]string{}
		if tc.v != nil {
			ann[oci.AnnotationLandlockWritable] = *tc.v
		}
		got, err := WritableOf(ann)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) || (tc.want != nil && got == nil) {
			t.Errorf("WritableOf(%v) = %#v, %v; want %#v, error %v", tc.v, got, err, tc.want, tc.wantErr)
		}
	}
}

func ptr(s string) *string { return &s }

func TestProcReadOnlyTakesWritesAwayBeneathProcfsOnly(t *testing.T) {
	rules := []Rule{{Path: "/", Writable: true, Dir: true}, {Path: "/proc", Writable: true, Dir: true},
		{Path: "/proc/sys", Dir: true}, {Path: "/tmp", Writable: true, Dir: true}}
	mounts := []*mountinfo.Info{{Mountpoint: "/", FSType: "overlay"}, {Mountpoint: "/proc", FSType: "proc"},
		{Mountpoint: "/proc/sys", FSType: "proc"}, {Mountpoint: "/tmp", FSType: "tmpfs"}}
	got := procReadOnly(slices.Clone(rules), mounts)
	want := []Rule{{Path: "/", Writable: true, Dir: true}, {Path: "/proc", Dir: true}, {Path: "/proc/sys", Dir: true}, {Path: "/tmp", Writable: true, Dir: true}}
	if !slices.Equal(got, want) {
		t.Errorf("procReadOnly = %+v, want %+v", got, want)
	}
}

func TestProcWritesOf(t *testing.T) {
	for _, tc := range []struct {
		v       string
		want    bool
		wantErr bool
	}{{"", false, false}, {"ro", false, false}, {"rw", true, false}, {"yes", false, true}} {
		a := map[string]string{}
		if tc.v != "" {
			a[oci.AnnotationLandlockProc] = tc.v
		}
		got, err := ProcWritesOf(a)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ProcWritesOf(%q) = %v, %v; want %v, error %v", tc.v, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), oci.AnnotationLandlockProc) {
			t.Errorf("error %q does not name the annotation", err)
		}
	}
}
