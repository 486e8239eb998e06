package userface

import (
	"strings"
	"testing"

	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

func TestExplainAnswersFromTheWholeProfile(t *testing.T) {
	tests := []struct {
		profile, what string
		want          []string // each must appear in the answer
		not           []string // none may
	}{
		{"default", "chown", []string{"chown allowed", "no CAP_CHOWN", "EPERM", "--cap-add CHOWN", "--profile dev"}, nil},
		{"dev", "chown", []string{"grants CAP_CHOWN"}, []string{"--cap-add"}},
		{"default", "getpid", []string{"getpid allowed"}, []string{"capabilities"}},
		{"strict", "socket", []string{"SIGSYS", "exit 159"}, nil},
		{"webapp", "bind", []string{"grants CAP_NET_BIND_SERVICE"}, nil},
		{"default", "/etc/passwd", []string{"read-only", "EROFS", "--writable", "--tmpfs"}, nil},
		{"dev", "/etc/passwd", []string{"writable under the dev profile"}, []string{"EROFS"}},
		{"default", "/tmp/x", []string{"tmpfs", "noexec", "--tmpfs /tmp:exec"}, nil},
		{"dev", "/tmp", []string{"tmpfs"}, []string{"noexec"}},
		{"default", "/proc/kcore", []string{"masked"}, nil},
		{"default", "/proc/sys/kernel", []string{"read-only"}, nil},
		{"default", "/dev/sda", []string{"devices cgroup denies", "--device /dev/sda"}, nil},
		{"default", "/dev/null", []string{"default device nodes"}, []string{"denies"}},
		{"default", "/srv", []string{"landlock"}, nil},
		{"default", "CAP_CHOWN", []string{"granted by the profiles: dev", "--cap-add CHOWN"}, nil},
		{"default", "NET_BIND_SERVICE", []string{"webapp", "database"}, nil},
		{"dev", "chown", nil, []string{"no CAP_"}},
		{"default", "SYS_ADMIN", []string{"no profile grants it"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.profile+"/"+tt.what, func(t *testing.T) {
			lines, err := Explain(tt.profile, tt.what)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(lines, "\n")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer lacks %q:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("answer has %q:\n%s", n, got)
				}
			}
		})
	}
}

func TestExplainRefusesWhatItCannotName(t *testing.T) {
	for _, c := range []struct{ profile, what string }{{"default", "nosuchcall"}, {"nosuch", "chown"}, {"default", "CAP_NOSUCH"}} {
		if _, err := Explain(c.profile, c.what); err == nil {
			t.Errorf("Explain(%q, %q) = nil error", c.profile, c.what)
		}
	}
}

// Every entry of the tables names a real syscall and capability, so a typo
// cannot silently never match.
func TestPrivilegedSyscallTableNamesRealThings(t *testing.T) {
	for name, p := range privilegedSyscalls {
		if !seccomp.KnownSyscall(name) {
			t.Errorf("%s: not a syscall libseccomp knows", name)
		}
		if c, err := policy.CapName(p.Cap); err != nil || c != p.Cap {
			t.Errorf("%s: capability %q: %v", name, p.Cap, err)
		}
	}
	for c := range capUses {
		if _, err := policy.CapName(c); err != nil {
			t.Errorf("capUses: %v", err)
		}
	}
}
