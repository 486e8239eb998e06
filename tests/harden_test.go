package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
)

// dockerCaps is what dockerd puts in all four sets by default.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// dockerShaped makes the bundle's config look like dockerd's for
// `docker run --security-opt seccomp=unconfined`: 14 capabilities, no
// seccomp, no no_new_privs, no pids limit, writable root.
func dockerShaped(s *specs.Spec) {
	c := func() []string { return slices.Clone(dockerCaps) }
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: c(), Effective: c(), Permitted: c(), Inheritable: c()}
	s.Process.NoNewPrivileges = false
	s.Root.Readonly = false
	s.Linux.Seccomp = nil
	if s.Linux.Resources != nil {
		s.Linux.Resources.Pids = nil
	}
}

// postureScript prints what the floor changes, one key=value per line.
const postureScript = `
	echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)
	echo seccomp=$(grep '^Seccomp:' /proc/self/status | cut -f2)
	echo capeff=$(grep CapEff /proc/self/status | cut -f2)
	echo packet=$(syscall socket AF_PACKET SOCK_RAW 0)
	echo kcore=$(test -e /proc/kcore && wc -c < /proc/kcore || echo absent)
	echo kallsyms=$(wc -c < /proc/kallsyms)
	echo pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)
	echo landlock=$(cat /proc/self/fd/3/secret 2>/dev/null || echo denied)
`

const capNetRaw = 13

func hasCapBit(t *testing.T, hex string, bit uint) bool {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", hex, err)
	}
	return v&(1<<bit) != 0
}

func TestHardenRaisesADockerShapedConfigAndOCIModeHonoursItExactly(t *testing.T) {
	testrootfs.RequireLandlock(t, 1)
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(policyFile, []byte(`{"harden": true, "allow": ["NET_RAW"], "pidsLimit": 777}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// An empty policy keeps the host's /etc/bulwark/policy.json out of the test.
	noPolicy := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(noPolicy, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// flags are bulwark's global flags.
		flags []string
		want  map[string]string
		// netRaw: CAP_NET_RAW in the effective set.
		netRaw bool
	}{
		{
			name:   "oci mode honours the config",
			flags:  []string{"--policy", policyFile + ".none"},
			netRaw: true,
			want:   map[string]string{"nnp": "0", "seccomp": "0", "packet": "OK", "pids": "max", "landlock": "host-secret"},
		},
		{
			name:  "--harden",
			flags: []string{"--harden", "--policy", noPolicy},
			want:  map[string]string{"nnp": "1", "seccomp": "2", "kallsyms": "0", "pids": "1024", "landlock": "denied"},
		},
		{
			name:   "policy file",
			flags:  []string{"--policy", policyFile},
			netRaw: true,
			want:   map[string]string{"nnp": "1", "seccomp": "2", "kallsyms": "0", "pids": "777", "landlock": "denied"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			_, dirFd := hostSecretDir(t, "host-secret\n")
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				dockerShaped(s)
				s.Process.Args = []string{"sh", "-c", postureScript}
			})
			logFile := filepath.Join(t.TempDir(), "log.json")
			args := append(slices.Clone(tc.flags), "--log", logFile, "--log-format", "json", "run", "--preserve-fds", "1", "-b", bundle, e.id())
			if tc.name == "oci mode honours the config" {
				// An explicitly named policy file that is missing is an
				// error; the default path may be absent.
				r := e.bwFds([]*os.File{dirFd}, args...)
				if r.code == 0 || !strings.Contains(r.stderr, "--policy") {
					t.Fatalf("a missing --policy file was not an error: %v", r)
				}
				args = append([]string{"--log", logFile, "--log-format", "json"}, args[4:]...)
			}
			r := e.bwFds([]*os.File{dirFd}, args...)
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			got := kv(r.stdout)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q\n%s", k, got[k], v, r.stdout)
				}
			}
			if has := hasCapBit(t, got["capeff"], capNetRaw); has != tc.netRaw {
				t.Errorf("CAP_NET_RAW effective = %v, want %v", has, tc.netRaw)
			}
			if tc.want["nnp"] == "1" {
				if got["packet"] == "OK" {
					t.Errorf("AF_PACKET socket allowed under the floor")
				}
				// This kernel may have no /proc/kcore; where it has one it
				// must read as the empty /dev/null.
				if got["kcore"] != "0" && got["kcore"] != "absent" {
					t.Errorf("/proc/kcore readable: %q bytes", got["kcore"])
				}
			} else if got["kallsyms"] == "0" || got["kallsyms"] == "" {
				t.Errorf("/proc/kallsyms masked without the floor: %q", got["kallsyms"])
			}
			log, _ := os.ReadFile(logFile)
			decisions := strings.Count(string(log), `"level":"info","msg":"harden: `)
			if hardened := tc.want["nnp"] == "1"; hardened != (decisions > 0) {
				t.Errorf("hardened = %v but %d decisions logged:\n%s", hardened, decisions, log)
			}
			if tc.name == "--harden" && !strings.Contains(string(log), "dropped CAP_NET_RAW") {
				t.Errorf("no decision names the NET_RAW drop:\n%s", log)
			}
		})
	}
}

func TestHardenRefusesAPrivilegedShapedConfigUnlessAnnotated(t *testing.T) {
	allCaps := []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID",
		"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_MKNOD",
	}
	privileged := func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: allCaps, Effective: allCaps, Permitted: allCaps}
		s.Linux.Seccomp = nil
		s.Process.Args = []string{"sh", "-c", "grep CapEff /proc/self/status | cut -f2"}
	}
	tests := []struct {
		name      string
		annotate  bool
		wantRun   bool
		wantInErr string
	}{
		{name: "refused", wantInErr: oci.AnnotationAllow + ": " + policy.AllowPrivileged},
		{name: "annotated", annotate: true, wantRun: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
				privileged(s)
				if tc.annotate {
					s.Annotations = map[string]string{oci.AnnotationAllow: policy.AllowPrivileged}
				}
			})
			id := e.id()
			empty := filepath.Join(t.TempDir(), "empty.json")
			if err := os.WriteFile(empty, []byte(`{}`), 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.bw("--harden", "--policy", empty, "run", "-b", bundle, id)
			if !tc.wantRun {
				if r.code == 0 || !strings.Contains(r.stderr, tc.wantInErr) {
					t.Fatalf("want a refusal naming %q: %v", tc.wantInErr, r)
				}
				if _, err := os.Stat(filepath.Join(e.root, id)); !os.IsNotExist(err) {
					t.Errorf("refused container left state behind: %v", err)
				}
				if l := e.mustOK("list", "-q"); strings.TrimSpace(l) != "" {
					t.Errorf("refused container listed: %q", l)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("annotated privileged config did not run: %v", r)
			}
			// Left as written: CAP_SYS_ADMIN (21) is still effective.
			if !hasCapBit(t, strings.TrimSpace(r.stdout), 21) {
				t.Errorf("CapEff %s lacks CAP_SYS_ADMIN", r.stdout)
			}
		})
	}
}
