package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

func ptr[T any](v T) *T { return &v }

func TestConfigProcessFieldsReachThePayload(t *testing.T) {
	e := newEnv(t)
	m := e.probe(func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 20}, Umask: ptr(uint32(0o027))}
		s.Process.Cwd = "/usr/local"
		s.Process.Env = append(s.Process.Env, "BULWARK_TEST=yes=really")
		s.Hostname = "bwt-hostname"
	})
	for _, c := range []struct {
		field string
		got   any
		want  any
	}{
		{"uid", m["uid"], 1000.0}, {"euid", m["euid"], 1000.0},
		{"gid", m["gid"], 1000.0}, {"egid", m["egid"], 1000.0},
		{"groups", fmt.Sprint(m["groups"]), "[5 20]"},
		{"umask", m["umask"], "0027"},
		{"cwd", m["cwd"], "/usr/local"},
		{"hostname", m["hostname"], "bwt-hostname"},
		// HOME is the init's, from the image's /etc/passwd (as runc does).
		{"env", fmt.Sprint(m["env"]), "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=xterm BULWARK_TEST=yes=really HOME=/home/app]"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.field, c.got, c.want)
		}
	}
}

// The rlimits are read by the shell: a Go payload (probe) raises its own
// NOFILE soft limit at startup, so it would not show what the runtime set.
func TestConfigRlimitsAreSet(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_NPROC", Soft: 50, Hard: 60}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
	}, "grep -E '^Max (open files|processes|core file size) ' /proc/self/limits")
	for _, want := range [][]string{{"open", "100", "200"}, {"processes", "50", "60"}, {"core", "0", "0"}} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) > 3 && f[1] == want[0] {
				found = true
				n := len(f)
				// "Max open files 100 200 files": the two numbers before the unit.
				if f[n-3] != want[1] || f[n-2] != want[2] {
					t.Errorf("%s: %q, want soft %s hard %s", want[0], l, want[1], want[2])
				}
			}
		}
		if !found {
			t.Errorf("no %s line in %q", want[0], out)
		}
	}
}

func TestConfigCapabilitySetsAreExact(t *testing.T) {
	e := newEnv(t)
	// CAP_CHOWN=0, CAP_KILL=5, CAP_NET_BIND_SERVICE=10.
	bnd := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	for _, tc := range []struct {
		name string
		uid  uint32
		caps specs.LinuxCapabilities
		// After execve: root gets its bounding set as permitted and
		// effective (file caps are "all" for root); others keep only the
		// ambient set.
		want map[string]string
	}{
		{"root", 0, specs.LinuxCapabilities{Bounding: bnd, Effective: bnd, Permitted: bnd,
			Inheritable: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}, Ambient: []string{"CAP_NET_BIND_SERVICE"}},
			map[string]string{"Bnd": "0000000000000421", "Prm": "0000000000000421", "Eff": "0000000000000421", "Inh": "0000000000000420", "Amb": "0000000000000400"}},
		{"non-root keeps ambient", 1000, specs.LinuxCapabilities{Bounding: bnd, Effective: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Permitted: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}, Inheritable: []string{"CAP_NET_BIND_SERVICE"}, Ambient: []string{"CAP_NET_BIND_SERVICE"}},
			map[string]string{"Bnd": "0000000000000421", "Prm": "0000000000000400", "Eff": "0000000000000400", "Inh": "0000000000000400", "Amb": "0000000000000400"}},
		{"none", 0, specs.LinuxCapabilities{},
			map[string]string{"Bnd": "0000000000000000", "Prm": "0000000000000000", "Eff": "0000000000000000", "Inh": "0000000000000000", "Amb": "0000000000000000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := e.probe(func(s *specs.Spec) {
				s.Process.User.UID, s.Process.User.GID = tc.uid, tc.uid
				c := tc.caps
				s.Process.Capabilities = &c
			})
			caps := m["caps"].(map[string]any)
			for set, want := range tc.want {
				if got := caps[set].(map[string]any)["hex"]; got != want {
					t.Errorf("Cap%s = %v, want %s", set, got, want)
				}
			}
		})
	}
}

// TestAmbientCapabilityNotInheritableIsLeftOutWithAWarning: an ambient
// capability that is not both permitted and inheritable cannot be raised;
// the container runs without it and the runtime says so in runc's words.
func TestAmbientCapabilityNotInheritableIsLeftOutWithAWarning(t *testing.T) {
	e := newEnv(t)
	kill := []string{"CAP_KILL"}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: kill, Effective: kill, Permitted: kill,
			Inheritable: kill, Ambient: []string{"CAP_KILL", "CAP_CHOWN"}}
		s.Process.Args = []string{"grep", "CapAmb", "/proc/self/status"}
	})
	r := e.bw("run", "-b", bundle, e.id())
	// CAP_KILL is 5: 0x20.
	if r.code != 0 || !strings.Contains(r.stdout, "0000000000000020") {
		t.Fatalf("run: want CapAmb 0x20 (CAP_KILL alone), got %v", r)
	}
	if !strings.Contains(r.stderr, "can't raise ambient capability CAP_CHOWN: ") || strings.Contains(r.stderr, "capability CAP_KILL") {
		t.Fatalf("want a warning about CAP_CHOWN alone, got stderr %q", r.stderr)
	}
}

// TestOwnerOnlyExecutableRunsWithCapDacOverride: a binary only its owner
// (root) may execute runs as another user who holds CAP_DAC_OVERRIDE, as
// execve and runc allow, and is refused without it; by path and through
// $PATH (exec shares the check).
func TestOwnerOnlyExecutableRunsWithCapDacOverride(t *testing.T) {
	e := newEnv(t)
	dac := []string{"CAP_DAC_OVERRIDE"}
	for _, tc := range []struct {
		name string
		caps *specs.LinuxCapabilities
		arg0 string
		ok   bool
	}{
		{"by path, without the capability", &specs.LinuxCapabilities{}, "/opt/echo", false},
		{"by path, with CAP_DAC_OVERRIDE", &specs.LinuxCapabilities{Bounding: dac, Effective: dac, Permitted: dac, Inheritable: dac, Ambient: dac}, "/opt/echo", true},
		{"through PATH, with CAP_DAC_OVERRIDE", &specs.LinuxCapabilities{Bounding: dac, Effective: dac, Permitted: dac, Inheritable: dac, Ambient: dac}, "echo", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000}
				s.Process.Capabilities = tc.caps
				s.Process.Env = []string{"PATH=/opt"}
				s.Process.Args = []string{tc.arg0, "owner-only-ran"}
			})
			// busybox picks its applet from the name it runs as.
			bb, err := os.ReadFile(filepath.Join(bundle, "rootfs/bin/busybox"))
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(bundle, "rootfs/opt/echo")
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, bb, 0o744); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dst, 0o744); err != nil {
				t.Fatal(err)
			}
			r := e.bw("run", "-b", bundle, e.id())
			if tc.ok && (r.code != 0 || r.stdout != "owner-only-ran\n") {
				t.Fatalf("want the payload to run, got %v", r)
			}
			if !tc.ok && (r.code == 0 || !strings.Contains(r.stderr, "permission denied")) {
				t.Fatalf("want a refusal naming permission denied, got %v", r)
			}
		})
	}
}

func TestConfigNoNewPrivilegesIsSetOnlyWhenAsked(t *testing.T) {
	e := newEnv(t)
	for _, nnp := range []bool{true, false} {
		m := e.probe(func(s *specs.Spec) { s.Process.NoNewPrivileges = nnp })
		want := 0.0
		if nnp {
			want = 1
		}
		if m["no_new_privs"] != want {
			t.Errorf("noNewPrivileges=%v: probe no_new_privs=%v", nnp, m["no_new_privs"])
		}
	}
}

func TestConfigOOMScoreAdjIsApplied(t *testing.T) {
	e := newEnv(t)
	for _, v := range []int{500, 1000, -100} {
		if v < 0 && !haveCap(t, 24) {
			t.Logf("skipping oomScoreAdj %d: lowering it needs CAP_SYS_RESOURCE, which this test process lacks", v)
			continue
		}
		out := e.mustSh(func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(v) }, "cat /proc/self/oom_score_adj")
		if out != fmt.Sprint(v) {
			t.Errorf("oomScoreAdj %d: inside %q", v, out)
		}
	}
}

func TestConfigHostnameAndDomainname(t *testing.T) {
	e := newEnv(t)
	got := kv(e.mustSh(func(s *specs.Spec) {
		s.Hostname = "bwt-h"
		s.Domainname = "bwt.example"
	}, "echo host=$(hostname); echo dom=$(cat /proc/sys/kernel/domainname)"))
	if got["host"] != "bwt-h" || got["dom"] != "bwt.example" {
		t.Fatalf("hostname/domainname inside: %v", got)
	}
	if h, _ := os.Hostname(); h == "bwt-h" {
		t.Fatalf("the host's hostname changed")
	}
}

func TestConfigPersonalityLinux32(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		domain specs.LinuxPersonalityDomain
		want   string
	}{{specs.PerLinux32, "i686"}, {specs.PerLinux, "x86_64"}} {
		r := e.sh(func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: tc.domain} }, "uname -m")
		if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("personality %s: %v, want %s", tc.domain, r, tc.want)
		}
	}
}

func TestConfigSysctlsAreWrittenInTheContainersNamespaces(t *testing.T) {
	e := newEnv(t)
	hostFwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	hostShm, _ := os.ReadFile("/proc/sys/kernel/shmmax")
	got := kv(e.mustSh(func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789", "net/ipv4/ping_group_range": "0 10"}
	}, "echo fwd=$(cat /proc/sys/net/ipv4/ip_forward); echo shm=$(cat /proc/sys/kernel/shmmax); echo ping=$(cat /proc/sys/net/ipv4/ping_group_range)"))
	if got["fwd"] != "1" || got["shm"] != "123456789" || strings.Join(strings.Fields(got["ping"]), " ") != "0 10" {
		t.Fatalf("sysctls inside: %v", got)
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(b) != string(hostFwd) {
		t.Errorf("host ip_forward changed: %q -> %q", hostFwd, b)
	}
	if b, _ := os.ReadFile("/proc/sys/kernel/shmmax"); string(b) != string(hostShm) {
		t.Errorf("host shmmax changed: %q -> %q", hostShm, b)
	}
}

// A sysctl whose namespace the container shares with the host would change
// the host: it must be refused before anything runs.
func TestConfigSysctlOfAHostNamespaceIsRefused(t *testing.T) {
	e := newEnv(t)
	before, _ := os.ReadFile("/proc/sys/kernel/shmmax")
	r := e.sh(func(s *specs.Spec) {
		s.Linux.Namespaces = without(s.Linux.Namespaces, specs.IPCNamespace)
		s.Linux.Sysctl = map[string]string{"kernel.shmmax": "12345"}
	}, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "kernel.shmmax") {
		t.Errorf("kernel.shmmax without an ipc namespace: %v", r)
	}
	if after, _ := os.ReadFile("/proc/sys/kernel/shmmax"); string(after) != string(before) {
		os.WriteFile("/proc/sys/kernel/shmmax", before, 0)
		t.Fatalf("the container changed the host's kernel.shmmax: %q -> %q", before, after)
	}
}

// haveCap reports whether this test process has capability bit n effective.
func haveCap(t *testing.T, n uint) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			var eff uint64
			fmt.Sscanf(strings.TrimSpace(v), "%x", &eff)
			return eff&(1<<n) != 0
		}
	}
	return false
}

// TestConfigHomeComesFromTheImagesPasswd: a config without HOME, or with
// an empty one, gets the process user's home from the rootfs's /etc/passwd,
// or "/" for a user it does not list, as runc does; a HOME in the config is
// kept. exec too.
func TestConfigHomeComesFromTheImagesPasswd(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		uid  uint32
		env  []string
		want string
	}{
		{"root", 0, nil, "/root"},
		{"app (1000)", 1000, nil, "/home/app"},
		{"a uid the image does not list", 4242, nil, "/"},
		{"HOME from the config", 1000, []string{"HOME=/srv"}, "/srv"},
		{"an empty HOME is none", 0, []string{"HOME="}, "/root"},
		{"the last HOME empty", 0, []string{"HOME=/srv", "HOME="}, "/root"},
	} {
		r := e.runIn(func(s *specs.Spec) {
			s.Process.User = specs.User{UID: tc.uid, GID: tc.uid}
			s.Process.Env = append(s.Process.Env, tc.env...)
		}, "sh", "-c", `echo "$HOME"`)
		if r.code != 0 || r.stdout != tc.want+"\n" {
			t.Errorf("%s: want HOME=%s, got %v", tc.name, tc.want, r)
		}
	}
	id, _ := e.detached(nil)
	for user, want := range map[string]string{"0": "/root", "1000:1000": "/home/app", "65534": "/nonexistent",
		"app": "/home/app 1000 1000", "app:tty": "/home/app 1000 5", "nobody:0": "/nonexistent 65534 0"} {
		cmd := `echo "$HOME"`
		if strings.Contains(want, " ") {
			cmd = `echo "$HOME" $(id -u) $(id -g)`
		}
		if r := e.bw("exec", "--user", user, id, "sh", "-c", cmd); r.code != 0 || r.stdout != want+"\n" {
			t.Errorf("exec --user %s: want %s, got %v", user, want, r)
		}
	}
	if r := e.bw("exec", "--user", "nosuch", id, "true"); r.code == 0 || !strings.Contains(r.stderr, `--user "nosuch": user nosuch: no such entry in the image's /etc/passwd`) {
		t.Errorf("exec --user nosuch: %v, want an error naming the flag and the file", r)
	}
}

// A config's rlimits below what the runtime's own init needs (an address
// space of 1 GiB, smaller than the Go init's reservations, with a stack
// limit of 9 GiB: runtime-tools' process_rlimits case) still reach the
// payload exactly, every time, with startContainer hooks too: they are
// applied just before execve, not while the init's Go runtime may still
// map memory and start threads (which failed the start, runtime: cannot
// allocate memory).
func TestConfigRlimitsBelowTheInitsOwnNeedsReachThePayloadEveryTime(t *testing.T) {
	e := newEnv(t)
	const gib = 1 << 30
	rls := []specs.POSIXRlimit{
		{Type: "RLIMIT_AS", Soft: gib, Hard: gib},
		{Type: "RLIMIT_STACK", Soft: 9 * gib, Hard: 9 * gib},
		{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200},
		{Type: "RLIMIT_NPROC", Soft: 50, Hard: 60},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
	}
	want := map[string][2]string{
		"address space":  {"1073741824", "1073741824"},
		"stack size":     {"9663676416", "9663676416"},
		"open files":     {"100", "200"},
		"processes":      {"50", "60"},
		"core file size": {"0", "0"},
	}
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Rlimits = rls
		s.Process.Args = []string{"cat", "/proc/self/limits"}
	})
	withHook := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Rlimits = rls
		s.Process.Args = []string{"cat", "/proc/self/limits"}
		// A startContainer hook: the init's Go runtime runs it, so the
		// limits go on after it.
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	})
	for i := range 15 {
		b := bundle
		if i%5 == 4 {
			b = withHook
		}
		r := e.bw("run", "-b", b, e.id())
		if r.code != 0 {
			t.Fatalf("run %d: %v", i, r)
		}
		for name, w := range want {
			found := false
			for _, l := range strings.Split(r.stdout, "\n") {
				rest, ok := strings.CutPrefix(l, "Max "+name+" ")
				if !ok {
					continue
				}
				found = true
				if f := strings.Fields(rest); len(f) < 2 || f[0] != w[0] || f[1] != w[1] {
					t.Errorf("run %d: %q, want soft %s hard %s", i, l, w[0], w[1])
				}
			}
			if !found {
				t.Errorf("run %d: no %q line in %q", i, name, r.stdout)
			}
		}
	}
}

// Without process.rlimits naming it, the payload gets RLIMIT_NOFILE as the
// runtime had it, not the raised soft limit the init's Go runtime gives
// itself at start, with startContainer hooks too (runc's behaviour: its
// init is a Go program as well, and Go puts the limit back at exec).
func TestNofileWithoutAConfigLimitIsTheRuntimes(t *testing.T) {
	e := newEnv(t)
	for _, hooks := range []bool{false, true} {
		bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Process.Rlimits = nil
			s.Process.Args = []string{"sh", "-c", "ulimit -Sn; ulimit -Hn"}
			if hooks {
				s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
			}
		})
		cmd := exec.Command("sh", "-c", `ulimit -Sn 321 && exec "$0" "$@"`, bulwarkBin, "--root", e.root, "run", "-b", bundle, e.id())
		var hard unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if want := fmt.Sprintf("321\n%d\n", hard.Max); err != nil || string(out) != want {
			t.Errorf("startContainer hooks %v: %q, %v; want %q", hooks, out, err, want)
		}
	}
}

// TestConfigEnvGivesEachVariableOnce: a variable the config names twice
// reaches the process once, with its last value, as runc hands it over
// (Docker's links and -e overrides rely on it), in run and in exec.
func TestConfigEnvGivesEachVariableOnce(t *testing.T) {
	e := newEnv(t)
	env := []string{"PATH=/usr/bin:/bin", "ONE=two", "TWO=2", "ONE=", "TWO=3"}
	want := "PATH=/usr/bin:/bin\nONE=\nTWO=3\nHOME=/root\n"
	r := e.runIn(func(s *specs.Spec) { s.Process.Env = env }, "env")
	if r.code != 0 || r.stdout != want {
		t.Errorf("run: want env %q, got %v", want, r)
	}
	id, _ := e.detached(nil)
	args := []string{"exec"}
	for _, v := range env {
		args = append(args, "--env", v)
	}
	r = e.bw(append(args, id, "env")...)
	if r.code != 0 || strings.Count(r.stdout, "ONE=") != 1 || strings.Count(r.stdout, "TWO=") != 1 ||
		!strings.Contains(r.stdout, "\nONE=\n") || !strings.Contains(r.stdout, "\nTWO=3\n") {
		t.Errorf("exec: want ONE and TWO once each (ONE=, TWO=3), got %v", r)
	}
}
