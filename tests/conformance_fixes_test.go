package tests

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests pin behaviour the OCI runtime-tools validation suite checks
// (conformance/run.sh), so that a regression shows up in `go test` too.

// The suite's default seccomp profile is an allowlist that predates
// close_range. Without no_new_privs the filter is loaded while the init still
// has its privileges, before its own fd cleanup: that cleanup must not be
// subject to the payload's filter.
func TestSeccompWithoutNNPNeedNotAllowCloseRange(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{{
				Names:  []string{"close_range"},
				Action: specs.ActErrno,
			}},
		}
	}, "echo ran")
	if !strings.Contains(out, "ran") {
		t.Fatalf("container output %q, want \"ran\"", out)
	}
}
