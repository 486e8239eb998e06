package caps

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

const (
	helperEnv = "BULWARK_CAPS_HELPER"
	configEnv = "BULWARK_CAPS_CONFIG"
	argEnv    = "BULWARK_CAPS_ARG"
)

// TestHelperProcess is the child side of the tests below. It is not a test by
// itself: capability changes are irreversible for a thread, so each scenario runs in
// a fresh copy of the test binary.
func TestHelperProcess(t *testing.T) {
	scenario := os.Getenv(helperEnv)
	if scenario == "" {
		return
	}
	fail := func(format string, a ...any) {
		fmt.Printf("HELPER-ERROR: "+format+"\n", a...)
		os.Exit(2)
	}
	var c specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(os.Getenv(configEnv)), &c); err != nil {
		fail("config: %v", err)
	}
	// The sets are per-thread; every step up to the report or execve must run here.
	runtime.LockOSThread()
	// "hold-SCENARIO": SCENARIO with ApplyHoldingAdmin in place of Apply.
	scenario, hold := strings.CutPrefix(scenario, "hold-")

	if err := DropBounding(&c); err != nil {
		fail("DropBounding: %v", err)
	}
	if scenario == "setuid-exec" {
		// Raw per-thread syscalls, as the init does it: keepcaps is a per-thread
		// flag, and Go's syscall.Setuid would change every thread.
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			fail("PR_SET_KEEPCAPS: %v", err)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			fail("setgroups: %v", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, 1000, 1000, 1000); e != 0 {
			fail("setresgid: %v", e)
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, 1000, 1000, 1000); e != 0 {
			fail("setresuid: %v", e)
		}
	}
	apply := Apply
	if hold {
		apply = ApplyHoldingAdmin
	}
	if err := apply(&c); err != nil {
		fail("Apply: %v", err)
	}

	switch scenario {
	case "report":
		b, err := os.ReadFile("/proc/thread-self/status")
		if err != nil {
			fail("%v", err)
		}
		fmt.Print(string(b))
	case "chown":
		err := os.Chown(os.Getenv(argEnv), 1000, 1000)
		fmt.Printf("CHOWN: %v\n", errnoName(err))
	case "root-exec":
		err := syscall.Exec("/bin/busybox", []string{"grep", "-E", "^(Cap|Uid)", "/proc/self/status"}, []string{})
		fail("exec busybox: %v", err)
	case "setuid-exec":
		// Ambient capabilities exist to survive exactly this: execve of an ordinary,
		// non-setuid binary by a non-root user.
		err := syscall.Exec("/bin/busybox", []string{"grep", "-E", "^(Cap|Uid)", "/proc/self/status"}, []string{})
		fail("exec busybox: %v", err)
	default:
		fail("unknown scenario %q", scenario)
	}
	os.Exit(0)
}

func errnoName(err error) string {
	var errno syscall.Errno
	if err == nil {
		return "ok"
	}
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// runHelper runs scenario in a child and returns the /proc status-like lines it printed.
func runHelper(t *testing.T, scenario string, c *specs.LinuxCapabilities, arg string) map[string]string {
	t.Helper()
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+scenario, configEnv+"="+string(js), argEnv+"="+arg)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "HELPER-ERROR") {
		t.Fatalf("helper %s failed: %v\n%s", scenario, err, out)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

func mustRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test changes capability sets and user ids")
	}
}

func mask(t *testing.T, names []string) uint64 {
	t.Helper()
	var m uint64
	for _, n := range names {
		c, ok := byName[n]
		if !ok {
			t.Fatalf("test bug: unknown capability %q", n)
		}
		m |= 1 << uint(c)
	}
	return m
}

// held returns our own permitted and bounding masks: a child cannot gain what we lack
// (this VM, for example, may run us without CAP_SYS_RESOURCE).
func held(t *testing.T) (prm, bnd uint64) {
	t.Helper()
	m, err := readMasks("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	return m["permitted"], m["bounding"]
}

func namesIn(m uint64, list []string) []string {
	var out []string
	for _, n := range list {
		if m&(1<<uint(byName[n])) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func parseHex(t *testing.T, fields map[string]string, key string) uint64 {
	t.Helper()
	v, ok := fields[key]
	if !ok {
		t.Fatalf("helper output lacks %s: %v", key, fields)
	}
	m, err := strconv.ParseUint(v, 16, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return m
}

var dockerDefault = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

func TestApplyExactMasks(t *testing.T) {
	mustRoot(t)
	prm, bnd := held(t)
	dflt := namesIn(prm&bnd, dockerDefault)
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	if prm&bnd&mask(t, nbs) == 0 {
		t.Skip("test process lacks CAP_NET_BIND_SERVICE")
	}

	tests := []struct {
		name string
		c    specs.LinuxCapabilities
		want map[string][]string // status key -> names expected set
	}{
		{
			name: "docker default",
			c:    specs.LinuxCapabilities{Bounding: dflt, Effective: dflt, Permitted: dflt},
			want: map[string][]string{"CapBnd": dflt, "CapEff": dflt, "CapPrm": dflt, "CapInh": nil, "CapAmb": nil},
		},
		{
			name: "everything empty",
			c:    specs.LinuxCapabilities{},
			want: map[string][]string{"CapBnd": nil, "CapEff": nil, "CapPrm": nil, "CapInh": nil, "CapAmb": nil},
		},
		{
			name: "ambient raised when permitted and inheritable",
			c:    specs.LinuxCapabilities{Bounding: append(nbs, "CAP_CHOWN"), Effective: nbs, Permitted: nbs, Inheritable: nbs, Ambient: nbs},
			want: map[string][]string{"CapBnd": append(nbs, "CAP_CHOWN"), "CapEff": nbs, "CapPrm": nbs, "CapInh": nbs, "CapAmb": nbs},
		},
		{
			name: "ambient not inheritable is skipped",
			c:    specs.LinuxCapabilities{Bounding: nbs, Permitted: nbs, Ambient: nbs},
			want: map[string][]string{"CapBnd": nbs, "CapEff": nil, "CapPrm": nbs, "CapInh": nil, "CapAmb": nil},
		},
		{
			name: "permitted without effective",
			c:    specs.LinuxCapabilities{Bounding: dflt, Permitted: nbs},
			want: map[string][]string{"CapBnd": dflt, "CapEff": nil, "CapPrm": nbs, "CapInh": nil, "CapAmb": nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runHelper(t, "report", &tc.c, "")
			for key, names := range tc.want {
				if g, w := parseHex(t, got, key), mask(t, names); g != w {
					t.Errorf("%s = %016x, want %016x (%v)", key, g, w, names)
				}
			}
		})
	}
}

func TestDroppedChownIsEnforced(t *testing.T) {
	mustRoot(t)
	prm, bnd := held(t)
	all := namesIn(prm&bnd, Names())
	withoutChown := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == "CAP_CHOWN" })

	tests := []struct {
		name string
		caps []string
		want string
	}{
		{"all held caps (control)", all, "ok"},
		{"all but CAP_CHOWN", withoutChown, "EPERM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "owned-by-root")
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			c := specs.LinuxCapabilities{Bounding: tc.caps, Effective: tc.caps, Permitted: tc.caps}
			got := runHelper(t, "chown", &c, f)
			if got["CHOWN"] != tc.want {
				t.Fatalf("chown to 1000 in child: %q, want %q", got["CHOWN"], tc.want)
			}
		})
	}
}

func TestAmbientSurvivesExecAsNonRoot(t *testing.T) {
	mustRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox to report caps after execve: ", err)
	}
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	prm, bnd := held(t)
	if prm&bnd&mask(t, nbs) == 0 {
		t.Skip("test process lacks CAP_NET_BIND_SERVICE")
	}
	bounding := []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN", "CAP_KILL"}

	tests := []struct {
		name    string
		ambient []string
		want    map[string][]string
	}{
		{
			name:    "with ambient",
			ambient: nbs,
			want:    map[string][]string{"CapBnd": bounding, "CapEff": nbs, "CapPrm": nbs, "CapInh": nbs, "CapAmb": nbs},
		},
		{
			// Control: without ambient, execve as uid 1000 strips permitted and
			// effective, which is what makes the ambient case meaningful.
			name:    "without ambient",
			ambient: nil,
			want:    map[string][]string{"CapBnd": bounding, "CapEff": nil, "CapPrm": nil, "CapInh": nbs, "CapAmb": nil},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := specs.LinuxCapabilities{Bounding: bounding, Effective: nbs, Permitted: nbs, Inheritable: nbs, Ambient: tc.ambient}
			got := runHelper(t, "setuid-exec", &c, "")
			if uid := strings.Fields(got["Uid"]); len(uid) != 4 || uid[0] != "1000" || uid[1] != "1000" {
				t.Fatalf("exec'd process Uid line = %q, want uid 1000", got["Uid"])
			}
			for key, names := range tc.want {
				if g, w := parseHex(t, got, key), mask(t, names); g != w {
					t.Errorf("after execve as uid 1000: %s = %016x, want %016x (%v)", key, g, w, names)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		c         *specs.LinuxCapabilities
		wantErr   string
		wantField string
		unknown   bool
		warnings  []string
	}{
		{name: "nil", c: nil},
		{name: "all known", c: &specs.LinuxCapabilities{Bounding: Names(), Permitted: Names(), Effective: Names()}},
		{
			name:      "unknown in bounding",
			c:         &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL", "CAP_FOO"}},
			wantErr:   `process.capabilities.bounding[2]: unknown capability "CAP_FOO"`,
			wantField: "process.capabilities.bounding[2]",
			unknown:   true,
		},
		{
			name:      "lower case gets a hint",
			c:         &specs.LinuxCapabilities{Ambient: []string{"cap_chown"}},
			wantErr:   `process.capabilities.ambient[0]: unknown capability "cap_chown" (names are upper case: "CAP_CHOWN")`,
			wantField: "process.capabilities.ambient[0]",
			unknown:   true,
		},
		{
			name:      "missing prefix gets a hint",
			c:         &specs.LinuxCapabilities{Inheritable: []string{"NET_ADMIN"}},
			wantErr:   `process.capabilities.inheritable[0]: unknown capability "NET_ADMIN" (did you mean "CAP_NET_ADMIN"?)`,
			wantField: "process.capabilities.inheritable[0]",
			unknown:   true,
		},
		{
			name:      "effective not permitted",
			c:         &specs.LinuxCapabilities{Effective: []string{"CAP_KILL"}, Permitted: []string{"CAP_CHOWN"}},
			wantErr:   "process.capabilities.effective[0]: CAP_KILL is not in process.capabilities.permitted",
			wantField: "process.capabilities.effective[0]",
		},
		{
			name:     "ambient not inheritable warns",
			c:        &specs.LinuxCapabilities{Permitted: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}},
			warnings: []string{"process.capabilities.ambient[0]: CAP_KILL is not in both permitted and inheritable, so it cannot be ambient; ignoring it"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warnings, err := Validate(tc.c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !slices.Equal(warnings, tc.warnings) {
					t.Fatalf("warnings = %q, want %q", warnings, tc.warnings)
				}
				return
			}
			var fe *oci.FieldError
			if err == nil || !errors.As(err, &fe) {
				t.Fatalf("error = %v, want a *oci.FieldError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.wantErr) || fe.Field != tc.wantField {
				t.Fatalf("error = %q (field %q), want %q (field %q)", err, fe.Field, tc.wantErr, tc.wantField)
			}
			if errors.Is(err, ErrUnknown) != tc.unknown {
				t.Fatalf("errors.Is(err, ErrUnknown) = %v, want %v", !tc.unknown, tc.unknown)
			}
			// Apply and DropBounding must refuse the same config rather than skip names.
			if err := Apply(tc.c); err == nil || err.Error() != fe.Error() {
				t.Fatalf("Apply accepted or changed the error: %v", err)
			}
			if err := DropBounding(tc.c); err == nil || err.Error() != fe.Error() {
				t.Fatalf("DropBounding accepted or changed the error: %v", err)
			}
		})
	}
}

func TestValidateKernelUnsupported(t *testing.T) {
	last, err := capability.LastCap()
	if err != nil {
		t.Fatal(err)
	}
	known := capability.ListKnown()
	newest := known[len(known)-1]
	if newest <= last {
		t.Skipf("the running kernel supports every capability this build knows (last is %s), so there is no unsupported name to test with", last)
	}
	n := nameOf(newest)
	warnings, err := Validate(&specs.LinuxCapabilities{Bounding: []string{n}})
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "not supported by the running kernel") {
		t.Fatalf("Validate(%s) = %q, %v; want one warning", n, warnings, err)
	}
}

func TestNamesAndCurrent(t *testing.T) {
	names := Names()
	for _, want := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_BPF"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
	if names[0] != "CAP_CHOWN" {
		t.Errorf("Names()[0] = %s, want CAP_CHOWN (kernel bit order)", names[0])
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	masks, err := readMasks("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{"bounding", "effective", "permitted", "inheritable", "ambient"} {
		list, ok := cur[set]
		if !ok {
			t.Fatalf("Current() lacks %q: %v", set, cur)
		}
		if got := mask(t, list); got != masks[set] {
			t.Errorf("Current()[%q] = %v (mask %016x), status says %016x", set, list, got, masks[set])
		}
	}
}

// A thread that must still load a seccomp filter without no_new_privs holds
// CAP_SYS_ADMIN in its effective and permitted sets only; the program it
// executes, as root or as uid 1000, has exactly the sets Apply would have
// given it, without CAP_SYS_ADMIN.
func TestHeldAdminIsGoneAfterExec(t *testing.T) {
	mustRoot(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox to report caps after execve: ", err)
	}
	nbs := []string{"CAP_NET_BIND_SERVICE"}
	admin := []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}
	prm, bnd := held(t)
	if prm&bnd&mask(t, admin) != mask(t, admin) {
		t.Skip("test process lacks CAP_NET_BIND_SERVICE or CAP_SYS_ADMIN")
	}
	bounding := []string{"CAP_NET_BIND_SERVICE", "CAP_CHOWN"}
	c := specs.LinuxCapabilities{Bounding: bounding, Effective: nbs, Permitted: nbs, Inheritable: nbs}
	tests := []struct {
		scenario string
		want     map[string][]string
	}{
		{"hold-report", map[string][]string{"CapBnd": bounding, "CapEff": admin, "CapPrm": admin, "CapInh": nbs, "CapAmb": nil}},
		// Root gets bounding | inheritable at execve, whatever it held before.
		{"hold-root-exec", map[string][]string{"CapBnd": bounding, "CapEff": bounding, "CapPrm": bounding, "CapInh": nbs, "CapAmb": nil}},
		{"root-exec", map[string][]string{"CapBnd": bounding, "CapEff": bounding, "CapPrm": bounding, "CapInh": nbs, "CapAmb": nil}},
		// Anyone else gets the ambient set, empty here.
		{"hold-setuid-exec", map[string][]string{"CapBnd": bounding, "CapEff": nil, "CapPrm": nil, "CapInh": nbs, "CapAmb": nil}},
		{"setuid-exec", map[string][]string{"CapBnd": bounding, "CapEff": nil, "CapPrm": nil, "CapInh": nbs, "CapAmb": nil}},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			got := runHelper(t, tc.scenario, &c, "")
			for key, names := range tc.want {
				if g, w := parseHex(t, got, key), mask(t, names); g != w {
					t.Errorf("%s = %016x, want %016x (%v)", key, g, w, names)
				}
			}
		})
	}
}
