package tests

import (
	"strings"
	"testing"
)

// A person's run that ends badly gets one `bulwark: hint:` line naming the
// likely cause and the flag that changes it; a run that succeeds gets none.
func TestUserRunHintsNameTheCauseOfAFailure(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	tests := []struct {
		name     string
		flags    []string
		cmd      []string
		wantCode int // -1: any non-zero
		want     []string
	}{
		{name: "seccomp kill", flags: []string{"--profile", "strict"},
			cmd: []string{"/usr/local/bin/syscall", "socket", "AF_INET", "SOCK_STREAM"}, wantCode: 159,
			// The kernel's audit record names the call and the program.
			want: []string{"SIGSYS", "strict", "does not allow socket", "/usr/local/bin/syscall", "bulwark explain --profile strict socket"}},
		{name: "OOM kill at the memory limit", flags: []string{"--memory", "8m"},
			cmd: []string{"/usr/local/bin/membomb", "64"}, wantCode: -1,
			want: []string{"OOM-killed", "8m", "--memory"}},
		{name: "read-only rootfs", cmd: []string{"touch", "/x"}, wantCode: 1,
			want: []string{"Read-only file system", "read-only", "--writable", "--tmpfs /x"}},
		{name: "chown without CAP_CHOWN", cmd: []string{"sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f"}, wantCode: 1,
			want: []string{"Operation not permitted", "CAP_CHOWN", "--cap-add CHOWN", "--profile dev"}},
		{name: "program on the noexec /tmp", cmd: []string{"sh", "-c", "cp /bin/busybox /tmp/b && /tmp/b true"}, wantCode: -1,
			want: []string{"Permission denied", "noexec", "--tmpfs /tmp:exec"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.userRun(nil, tc.flags, rootfs, tc.cmd...)
			if (tc.wantCode == -1 && r.code == 0) || (tc.wantCode != -1 && r.code != tc.wantCode) {
				t.Fatalf("exit %d, want %d: %v", r.code, tc.wantCode, r)
			}
			var hints []string
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.HasPrefix(l, "bulwark: hint: ") {
					hints = append(hints, l)
				}
			}
			if len(hints) != 1 {
				t.Fatalf("want one hint line, got %d: %v", len(hints), r)
			}
			for _, w := range tc.want {
				if !strings.Contains(hints[0], w) {
					t.Errorf("hint lacks %q: %s", w, hints[0])
				}
			}
			e.assertUserRunGone(e.ids[len(e.ids)-1])
		})
	}
}

func TestUserRunGivesNoHintWhenItSucceeds(t *testing.T) {
	e := newEnv(t)
	rootfs := userRootfs(t)
	// The payload's own stderr mentions a denial, yet the run succeeded:
	// no hint, and its stderr reaches the person unchanged.
	msg := "chown: /tmp/f: Operation not permitted"
	r := e.userRun(nil, nil, rootfs, "sh", "-c", "echo '"+msg+"' >&2; echo out")
	if r.code != 0 || r.stdout != "out\n" {
		t.Fatalf("got %v, want exit 0 and stdout out", r)
	}
	if strings.Contains(r.stderr, "hint") {
		t.Errorf("a successful run printed a hint: %v", r)
	}
	if !strings.Contains(r.stderr, msg+"\n") {
		t.Errorf("the payload's stderr did not reach the person: %v", r)
	}
}
